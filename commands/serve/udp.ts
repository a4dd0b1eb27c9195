import {Command} from '@oclif/core'
import {serverFlags, serverOverrides} from '../../src/config/flags.js'
import {serve, UserError} from '../../src/server/serve.js'
import {installEarlySignalHandlers} from '../../src/server/signals.js'

export default class ServeUdp extends Command {
  static override description = 'Run the UDP tracker (BEP 15)'
  static override examples = [
    '<%= config.bin %> serve udp',
    '<%= config.bin %> serve udp --ipv4 127.0.0.1:6969 --ipv6 [::1]:6969',
    '<%= config.bin %> serve udp --ipv4 127.0.0.1:6969                # IPv4 loopback only: without --ipv6, IPv6 is off',
    '<%= config.bin %> serve udp -c udp.toml --no-ipv6 --metrics 127.0.0.1:0',
    '<%= config.bin %> serve udp -c udp.toml',
  ]
  static override flags = serverFlags

  async run(): Promise<void> {
    installEarlySignalHandlers()
    const {flags} = await this.parse(ServeUdp)
    try {
      const tracker = await serve('udp', flags.config, serverOverrides(flags))
      await tracker.done
    } catch (error) {
      if (error instanceof UserError) this.error(error.message, {exit: 1})
      throw error
    }
  }
}
