import {Command} from '@oclif/core'
import {loadtestFlags} from '../../src/config/flags.js'
import {LoadtestUsageError, runLoadtestCommand, writeInfoHashesFlag} from '../../loadtest/cli.js'
import {runWsLoadtest} from '../../loadtest/ws.js'

export default class LoadtestWs extends Command {
  static override description =
    'Load a WebTorrent tracker with simulated browser peers (offers and answers) and print rates, errors, malformed replies and latency; exits 1 when nothing usable came back'
  static override examples = [
    '<%= config.bin %> loadtest ws --duration 60 --warmup 2',
    '<%= config.bin %> loadtest ws --server [::1]:8000 --duration 10 --json',
    '<%= config.bin %> loadtest ws --write-info-hashes allowed.txt   # an access list for the tracker under test',
  ]
  static override flags = {
    ...loadtestFlags,
    'write-info-hashes': writeInfoHashesFlag,
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(LoadtestWs)
    try {
      await runLoadtestCommand(
        {
          schema: 'loadtest-ws',
          run: runWsLoadtest,
          describe: c =>
            `loading ${c.network.tls ? 'wss' : 'ws'}://${c.server_address} with ${c.workers} thread(s), ${c.network.connections} connection(s), ` +
            `${c.requests.offers_per_announce} offer(s) of ${c.requests.sdp_size} bytes per announce`,
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
