import {stringify} from 'smol-toml'
import {defaultsOf, type Key, type Schema} from './schema.js'
import {SCHEMAS, type SchemaName} from './schemas.js'

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
  const parts = [head, renderKeys(s.top, values)]
  for (const [sectionName, section] of Object.entries(s.sections)) {
    const help = section.help ? comment(section.help) + '\n' : ''
    parts.push(`${help}[${sectionName}]\n${renderKeys(section.keys, values[sectionName] as Record<string, unknown>)}`)
  }
  return parts.join('\n\n') + '\n'
}
