/** Which tracker a config file can belong to: `tracker serve PROTOCOL`'s, or `tracker serve all`'s. */
import {allConfigFrom, loadAllConfig} from './all.js'
import {ConfigError, configFrom, loadConfig, readDocument, type ServerConfig} from './load.js'
import {SERVER_NAMES, type ServerName} from './schemas.js'

export const TRACKER_CONFIG_NAMES = [...SERVER_NAMES, 'all'] as const
export type TrackerConfigName = ServerName | 'all'

/** The keys of a tracker's config that the commands talking to it read: its pid file and metrics endpoint. */
export type TrackerFileKeys = Pick<ServerConfig, 'pid_file' | 'metrics'>

/**
 * One value of a tracker's config, for the commands that talk to a running tracker (`top -c`,
 * `accesslist reload -c`). With `protocol`, the file is read as that tracker's config. Without it,
 * as every tracker config it fits (its keys tell: enable_tls is HTTP's and WS's, batched_io UDP's
 * and WS's, [udp] and [http] tables `serve all`'s...); when they give different values (a file of shared keys only, whose value is a
 * default that differs by protocol), the error names them and asks for --protocol. No file: the
 * defaults of `protocol`, or of UDP.
 */
export function valueFromTrackerConfig<T>(
  file: string | undefined,
  protocol: TrackerConfigName | undefined,
  what: string,
  pick: (config: TrackerFileKeys) => T,
): T {
  if (protocol === 'all') return pick(loadAllConfig({file}))
  if (file === undefined || protocol !== undefined) return pick(loadConfig(protocol ?? 'udp', {file}))
  const doc = readDocument(file)
  const where = `config file ${file}`
  const fits: {name: TrackerConfigName; value: T}[] = []
  const refusals: string[] = []
  for (const name of TRACKER_CONFIG_NAMES) {
    try {
      fits.push({name, value: pick(name === 'all' ? allConfigFrom(file, doc, []) : configFrom(name, {file, doc}, []))})
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error
      refusals.push(`  as ${name}: ${error.message.startsWith(`${where}: `) ? error.message.slice(where.length + 2) : error.message}`)
    }
  }
  if (fits.length === 0) throw new ConfigError(`${where} is not a udp, http, ws or all tracker config:\n${refusals.join('\n')}`)
  const values = new Set(fits.map(f => JSON.stringify(f.value)))
  if (values.size === 1) return fits[0].value
  const names = fits.map(f => f.name)
  const list = `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`
  throw new ConfigError(
    `${where} fits the ${list} tracker configs, and they differ in ${what} (${fits.map(f => `${f.name}: ${String(f.value)}`).join(', ')}): ` +
      `say which with --protocol ${names.join('|')}, or set ${what} in the file`,
  )
}
