import {Command} from '@oclif/core'
import {loadtestFlags} from '../../src/config/flags.js'
import {LoadtestUsageError, runLoadtestCommand, writeInfoHashesFlag} from '../../loadtest/cli.js'
import {runHttpLoadtest} from '../../loadtest/http.js'

export default class LoadtestHttp extends Command {
  static override description =
    'Load an HTTP tracker (BEP 3, 23, 48) with simulated peers and print responses/s, errors, malformed replies and latency; exits 1 when nothing usable came back'
  static override examples = [
    '<%= config.bin %> loadtest http --duration 60 --warmup 2',
    '<%= config.bin %> loadtest http --server [::1]:6969 --duration 10 --json',
    '<%= config.bin %> loadtest http --write-info-hashes whitelist.txt   # then: opentracker -w whitelist.txt',
  ]
  static override flags = {
    ...loadtestFlags,
    'write-info-hashes': writeInfoHashesFlag,
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(LoadtestHttp)
    try {
      await runLoadtestCommand(
        {
          schema: 'loadtest-http',
          run: runHttpLoadtest,
          describe: c =>
            `loading ${c.network.tls ? 'https' : 'http'}://${c.server_address} with ${c.workers} thread(s), ${c.network.connections} connection(s)` +
            (c.network.keep_alive ? ' kept alive' : ', a new one per request'),
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
