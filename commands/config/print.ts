import {Args, Command} from '@oclif/core'
import {ConfigError, loadAllConfig, loadConfig, printAllConfig, printConfig, SCHEMA_NAMES, type SchemaName} from '../../src/config/index.js'
import {givenServerFlags, serverFlags, serverOverrides} from '../../src/config/flags.js'

export default class ConfigPrint extends Command {
  static override description = 'Print a config as commented TOML: the defaults, or with -c FILE and flags the config in force'
  static override examples = ['<%= config.bin %> config print udp > udp.toml', '<%= config.bin %> config print http -c http.toml --workers 2']
  static override args = {
    name: Args.string({description: 'which config (all: `tracker serve all`)', required: true, options: [...SCHEMA_NAMES, 'all']}),
  }
  static override flags = serverFlags

  async run(): Promise<void> {
    const {args, flags} = await this.parse(ConfigPrint)
    const name = args.name as SchemaName | 'all'
    const isServer = name === 'udp' || name === 'http' || name === 'ws' || name === 'all'
    try {
      const overrides = isServer ? serverOverrides(flags) : []
      if (name === 'all') {
        process.stdout.write(printAllConfig(flags.config || overrides.length > 0 ? loadAllConfig({file: flags.config, overrides}) : undefined))
        return
      }
      const given = givenServerFlags(flags)
      if (!isServer && given.length > 0)
        this.error(`${given.join(', ')}: these flags apply to server configs (udp, http, ws, all); edit the file for ${name}`, {exit: 1})
      const config = flags.config || overrides.length > 0 ? loadConfig(name, {file: flags.config, overrides}) : undefined
      process.stdout.write(printConfig(name, config))
    } catch (error) {
      if (error instanceof ConfigError) this.error(error.message, {exit: 1})
      throw error
    }
  }
}
