import {Command, Flags} from '@oclif/core'
import {requestReload} from '../../src/accesslist/client.js'
import {ConfigError, TRACKER_CONFIG_NAMES, type TrackerConfigName, valueFromTrackerConfig} from '../../src/config/index.js'

export default class AccesslistReload extends Command {
  static override description = 'Make a running tracker re-read its access list, and report the outcome (exit 0 only on success)'
  static override examples = ['<%= config.bin %> accesslist reload -c udp.toml', '<%= config.bin %> accesslist reload --pid ./tracker-udp.pid']
  static override flags = {
    config: Flags.string({char: 'c', description: "the tracker's config file (its pid_file is used)", helpValue: 'FILE'}),
    protocol: Flags.string({
      description: 'which tracker the config belongs to (default: the one whose keys the file has; udp without -c); asked for only when that is unclear',
      options: [...TRACKER_CONFIG_NAMES],
    }),
    pid: Flags.string({description: 'pid file of the tracker (instead of -c)', helpValue: 'FILE'}),
    timeout: Flags.integer({description: 'seconds to wait for the tracker to report', default: 10}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(AccesslistReload)
    let pidFile = flags.pid
    if (!pidFile) {
      try {
        pidFile = valueFromTrackerConfig(flags.config, flags.protocol as TrackerConfigName | undefined, 'pid_file', c => c.pid_file)
      } catch (error) {
        if (error instanceof ConfigError) this.error(error.message, {exit: 1})
        throw error
      }
    }
    const outcome = await requestReload(pidFile, flags.timeout * 1000)
    if (!outcome.ok) this.error(outcome.message, {exit: 1})
    this.log(outcome.message)
  }
}
