import {readFileSync} from 'node:fs'
import {parse, TomlError} from 'smol-toml'
import {parseSocketAddress} from './address.js'
import {defaultsOf, describeExpected, type Key, type Schema} from './schema.js'
import {SCHEMAS, type ConfigFor, type SchemaName} from './schemas.js'

/** A config the tracker refuses; the message names where, which key, the value and what was expected. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v))

/** Checks one value against its key; returns the value to store or throws. */
export function checkValue(key: Key<unknown>, value: unknown, where: string, path: string): unknown {
  const bad = (): never => {
    throw new ConfigError(`${where}: ${path} = ${show(value)} is not valid: expected ${describeExpected(key)}`)
  }
  switch (key.kind) {
    case 'integer':
      if (typeof value === 'bigint') bad()
      if (typeof value !== 'number' || !Number.isInteger(value) || value < key.min! || value > key.max!) bad()
      return value
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value) || value < key.min! || value > key.max!) bad()
      return value
    case 'boolean':
      if (typeof value !== 'boolean') bad()
      return value
    case 'string':
      if (typeof value !== 'string') bad()
      return value
    case 'enum':
      if (typeof value !== 'string' || !key.values!.includes(value)) bad()
      return value
    case 'address': {
      const parsed = typeof value === 'string' ? parseSocketAddress(value) : undefined
      if (!parsed || (key.family !== undefined && parsed.family !== key.family)) bad()
      return value
    }
  }
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date)
}

/** Merge a parsed TOML document over the defaults, refusing anything the schema does not know. */
export function applyDocument(s: Schema, base: Record<string, unknown>, doc: Record<string, unknown>, where: string): void {
  for (const [k, v] of Object.entries(doc)) {
    const key = s.top[k]
    if (key) {
      base[k] = checkValue(key, v, where, k)
      continue
    }
    const section = s.sections[k]
    if (!section) {
      const known = [...Object.keys(s.top), ...Object.keys(s.sections).map(n => `[${n}]`)].join(', ')
      throw new ConfigError(
        isTable(v)
          ? `${where}: unknown section [${k}]: expected one of ${Object.keys(s.sections)
              .map(n => `[${n}]`)
              .join(', ')}`
          : `${where}: unknown key ${k}: expected one of ${known}`,
      )
    }
    if (!isTable(v)) throw new ConfigError(`${where}: ${k} = ${show(v)} is not valid: expected a section [${k}]`)
    const target = base[k] as Record<string, unknown>
    for (const [sk, sv] of Object.entries(v)) {
      const skey = section.keys[sk]
      if (!skey) {
        throw new ConfigError(`${where}: unknown key ${k}.${sk}: keys in [${k}] are ${Object.keys(section.keys).join(', ')}`)
      }
      target[sk] = checkValue(skey, sv, where, `${k}.${sk}`)
    }
  }
}

/** Rules across keys. */
function crossCheck(name: SchemaName, config: Record<string, unknown>, where: string): void {
  const network = config.network as Record<string, unknown> | undefined
  if (['udp', 'http', 'ws'].includes(name) && network && network.use_ipv4 === false && network.use_ipv6 === false) {
    throw new ConfigError(`${where}: network.use_ipv4 and network.use_ipv6 are both false: expected at least one of them to be true`)
  }
}

/** Values given on the command line, already named by their flag for error messages. */
export interface Override {
  /** Key path, e.g. "network.address_ipv4" or "socket_workers". */
  path: string
  value: unknown
  /** How the user wrote it, e.g. "--ipv4". */
  flag: string
}

export interface LoadOptions {
  file?: string
  overrides?: Override[]
}

/**
 * Defaults, then the file (if any), then flags. Throws ConfigError before anything starts.
 * `socket_workers = 0` stays 0 here (so `config print` shows what was written); the runtime
 * resolves it (resolveWorkerCount).
 */
export function loadConfig<N extends SchemaName>(name: N, options: LoadOptions = {}): ConfigFor<N> {
  const s = SCHEMAS[name] as unknown as Schema
  const config = defaultsOf(s) as Record<string, unknown>
  let where = 'defaults'
  if (options.file !== undefined) {
    where = `config file ${options.file}`
    let text: string
    try {
      text = readFileSync(options.file, 'utf8')
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? String(error)
      throw new ConfigError(`${where} could not be read (${code}): check the path given with -c/--config`)
    }
    let doc: Record<string, unknown>
    try {
      doc = parse(text) as Record<string, unknown>
    } catch (error) {
      const detail = error instanceof TomlError ? `line ${error.line}, column ${error.column}: ${error.message.split('\n')[0]}` : String(error)
      throw new ConfigError(`${where} is not valid TOML: ${detail}`)
    }
    applyDocument(s, config, doc, where)
  }
  for (const o of options.overrides ?? []) {
    const [first, second] = o.path.split('.')
    const key = second === undefined ? s.top[first] : s.sections[first]?.keys[second]
    if (!key) throw new Error(`internal: flag ${o.flag} names unknown key ${o.path}`)
    const value = checkValue(key, o.value, `flag ${o.flag}`, o.path)
    if (second === undefined) config[first] = value
    else (config[first] as Record<string, unknown>)[second] = value
  }
  crossCheck(name, config, where)
  return config as ConfigFor<N>
}
