import {Command, Flags} from '@oclif/core'
import {writeFileSync} from 'node:fs'
import {ConfigError, loadConfig} from '../../src/config/index.js'
import {loadtestFlags, loadtestOverrides} from '../../src/config/flags.js'
import {formatReport} from '../../loadtest/report.js'
import {loadtestInfoHashList} from '../../loadtest/model.js'
import {runUdpLoadtest} from '../../loadtest/udp.js'

export default class LoadtestUdp extends Command {
  static override description = 'Load a UDP tracker (BEP 15) with simulated peers and print responses/s, errors and latency'
  static override examples = [
    '<%= config.bin %> loadtest udp --duration 60',
    '<%= config.bin %> loadtest udp --server [::1]:6969 --duration 10 --json',
    '<%= config.bin %> loadtest udp --write-info-hashes whitelist.txt   # then: opentracker -w whitelist.txt',
  ]
  static override flags = {
    ...loadtestFlags,
    'write-info-hashes': Flags.string({description: 'write the simulated info hashes (hex, one per line) for a whitelist or access list, then exit', helpValue: 'FILE'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(LoadtestUdp)
    let config
    try {
      config = loadConfig('loadtest-udp', {file: flags.config, overrides: loadtestOverrides(flags)})
    } catch (error) {
      if (error instanceof ConfigError) this.error(error.message, {exit: 1})
      throw error
    }
    if (flags['write-info-hashes']) {
      writeFileSync(flags['write-info-hashes'], loadtestInfoHashList(config))
      this.logToStderr(`wrote ${config.requests.number_of_torrents} info hashes to ${flags['write-info-hashes']}`)
      return
    }
    const abort = new AbortController()
    process.once('SIGINT', () => abort.abort())
    if (!flags.json) this.logToStderr(`loading ${config.server_address} with ${config.workers} thread(s) x ${config.network.sockets_per_worker} socket(s) x ${config.network.requests_in_flight_per_socket} requests in flight${config.duration ? ` for ${config.duration} s` : '; Ctrl-C stops'}`)
    const report = await runUdpLoadtest(config, {signal: abort.signal, onProgress: line => flags.json || process.stderr.write(line + '\n')})
    process.stdout.write(flags.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report))
  }
}
