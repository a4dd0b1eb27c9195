import {stringify} from 'smol-toml'
import {defaultsOf, type Key, type Schema} from './schema.js'
import {type AllConfig, allDocument, allSharedSchema, PROTOCOL_PARTS} from './all.js'
import {SCHEMAS, SERVER_NAMES, type SchemaName} from './schemas.js'

const comment = (text: string): string =>
  text
    .split('\n')
    .map(l => (l ? `# ${l}` : '#'))
    .join('\n')

function tomlValue(v: unknown): string {
  // smol-toml renders one key/value pair; take its right-hand side.
  const line = stringify({v}).trim()
  return line.slice(line.indexOf('=') + 1).trim()
}

function renderKeys(keys: Record<string, Key<unknown>>, values: Record<string, unknown>): string {
  return Object.entries(keys)
    .map(([k, key]) => `${comment(key.help)}\n${k} = ${tomlValue(values[k])}`)
    .join('\n\n')
}

/** The config as commented TOML: defaults when `config` is omitted, else the values in force. */
export function printConfig(name: SchemaName, config?: unknown): string {
  const s = SCHEMAS[name] as unknown as Schema
  const values = (config ?? defaultsOf(s)) as Record<string, unknown>
  const head = comment(
    `tracker ${name}: ${s.title}\n\nPrinted by \`tracker config print ${name}\`. Every key is optional: a key left out\ntakes the default shown here. Use the file with \`-c FILE\`.`,
  )
  return [head, ...renderSchema(s, values)].join('\n\n') + '\n'
}

/** The top keys, then each section; `prefix` names the table the schema sits in ("udp."). */
function renderSchema(s: Schema, values: Record<string, unknown>, prefix = ''): string[] {
  const parts = [renderKeys(s.top, values)]
  for (const [sectionName, section] of Object.entries(s.sections)) {
    const help = section.help ? comment(section.help) + '\n' : ''
    parts.push(`${help}[${prefix}${sectionName}]\n${renderKeys(section.keys, values[sectionName] as Record<string, unknown>)}`)
  }
  return parts
}

/** `tracker config print all`: the shared keys, then a table per protocol with its own keys. */
export function printAllConfig(config?: AllConfig): string {
  const {shared, parts} = allDocument(config)
  const head = comment(
    `tracker all: ${allSharedSchema.title}\n\nPrinted by \`tracker config print all\`, for \`tracker serve all -c FILE\`. Every key is optional:\na key left out takes the default shown here. The keys at the top are shared by every\nprotocol (one log, one pid file, one metrics endpoint, one access list); each protocol's\nown keys are in its table, [udp], [http] and [ws], and its sections ([udp.network], ...).`,
  )
  const out = [head, ...renderSchema(allSharedSchema, shared)]
  for (const p of SERVER_NAMES) out.push(`${comment(PROTOCOL_PARTS[p].title)}\n[${p}]\n${renderSchema(PROTOCOL_PARTS[p], parts[p], `${p}.`).join('\n\n')}`)
  return out.join('\n\n') + '\n'
}
