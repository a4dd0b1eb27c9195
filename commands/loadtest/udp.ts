import {Command} from '@oclif/core'
import {loadtestFlags} from '../../src/config/flags.js'
import {LoadtestUsageError, runLoadtestCommand, writeInfoHashesFlag} from '../../loadtest/cli.js'
import {runUdpLoadtest} from '../../loadtest/udp.js'

export default class LoadtestUdp extends Command {
  static override description =
    'Load a UDP tracker (BEP 15) with simulated peers and print responses/s, errors, malformed replies and latency; exits 1 when nothing usable came back'
  static override examples = [
    '<%= config.bin %> loadtest udp --duration 60 --warmup 2',
    '<%= config.bin %> loadtest udp --server [::1]:6969 --duration 10 --json',
    '<%= config.bin %> loadtest udp --write-info-hashes whitelist.txt   # then: opentracker -w whitelist.txt',
  ]
  static override flags = {
    ...loadtestFlags,
    'write-info-hashes': writeInfoHashesFlag,
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(LoadtestUdp)
    try {
      await runLoadtestCommand(
        {
          schema: 'loadtest-udp',
          run: runUdpLoadtest,
          describe: c =>
            `loading ${c.server_address} with ${c.workers} thread(s) x ${c.network.sockets_per_worker} socket(s) x ${c.network.requests_in_flight_per_socket} requests in flight`,
        },
        flags,
        line => this.logToStderr(line),
      )
    } catch (error) {
      if (error instanceof LoadtestUsageError) this.error(error.message, {exit: 1})
      throw error
    }
  }
}
