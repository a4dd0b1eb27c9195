import {Command} from '@oclif/core'
import {allServerFlags, serverOverrides} from '../../src/config/flags.js'
import {serveAll, UserError} from '../../src/server/serve.js'
import {installEarlySignalHandlers} from '../../src/server/signals.js'

export default class ServeAll extends Command {
  static override description =
    'Run the UDP, HTTP and WebTorrent trackers as one: one config file (a table per protocol), one pid and status file, one metrics endpoint, one Ctrl-C'
  static override examples = [
    '<%= config.bin %> serve all                              # UDP and HTTP on port 6969, WebTorrent on 8000, metrics on 127.0.0.1:9000',
    '<%= config.bin %> serve all --ipv4 127.0.0.1             # every protocol on IPv4 loopback, each on its port; IPv6 off',
    '<%= config.bin %> serve all -c all.toml                  # see `tracker config print all`',
  ]
  static override flags = allServerFlags

  async run(): Promise<void> {
    installEarlySignalHandlers()
    const {flags} = await this.parse(ServeAll)
    try {
      const tracker = await serveAll(flags.config, serverOverrides(flags))
      await tracker.done
    } catch (error) {
      if (error instanceof UserError) this.error(error.message, {exit: 1})
      throw error
    }
  }
}
