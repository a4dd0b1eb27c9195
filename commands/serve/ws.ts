import {Command} from '@oclif/core'
import {serverFlags, serverOverrides} from '../../src/config/flags.js'
import {serve, UserError} from '../../src/server/serve.js'
import {installEarlySignalHandlers} from '../../src/server/signals.js'

export default class ServeWs extends Command {
  static override description = 'Run the WebTorrent tracker (WebSocket signalling; plain or TLS)'
  static override examples = [
    '<%= config.bin %> serve ws',
    '<%= config.bin %> serve ws --ipv4 127.0.0.1:8000 --ipv6 [::1]:8000',
    '<%= config.bin %> serve ws --ipv4 127.0.0.1:8000                # IPv4 loopback only: without --ipv6, IPv6 is off',
    '<%= config.bin %> serve ws -c ws.toml --no-ipv6 --metrics 127.0.0.1:0',
    '<%= config.bin %> serve ws -c ws.toml',
  ]
  static override flags = serverFlags

  async run(): Promise<void> {
    installEarlySignalHandlers()
    const {flags} = await this.parse(ServeWs)
    try {
      const tracker = await serve('ws', flags.config, serverOverrides(flags))
      await tracker.done
    } catch (error) {
      if (error instanceof UserError) this.error(error.message, {exit: 1})
      throw error
    }
  }
}
