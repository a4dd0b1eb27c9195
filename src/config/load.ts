import {readFileSync} from 'node:fs'
import {parse, TomlError} from 'smol-toml'
import {checkSocketAddress} from './address.js'
import {defaultsOf, describeExpected, type Key, type Schema} from './schema.js'
import {SCHEMAS, SERVER_NAMES, type ConfigFor, type SchemaName, type ServerName} from './schemas.js'

/** A config the tracker refuses; the message names where, which key, the value and what was expected. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v))

/** Checks one value against its key; returns the value to store or throws. */
export function checkValue(key: Key<unknown>, value: unknown, where: string, path: string): unknown {
  const bad = (reason?: string): never => {
    throw new ConfigError(`${where}: ${path} = ${show(value)} is not valid: ${reason ? `${reason}; ` : ''}expected ${describeExpected(key)}`)
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
      if (typeof value !== 'string') return bad()
      // "localhost:PORT" is stored as "127.0.0.1:PORT": what `config print` shows is what is bound.
      const checked = checkSocketAddress(value, key.family)
      return checked.ok ? checked.text : bad(checked.reason)
    }
  }
}

export function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date)
}

/**
 * Merge a parsed TOML document over the defaults, refusing anything the schema does not know.
 * `prefix` is where the document sits in the file ("udp." for the [udp] table of an `all` config).
 */
export function applyDocument(s: Schema, base: Record<string, unknown>, doc: Record<string, unknown>, where: string, prefix = ''): void {
  for (const [k, v] of Object.entries(doc)) {
    const key = s.top[k]
    if (key) {
      base[k] = checkValue(key, v, where, prefix + k)
      continue
    }
    const section = s.sections[k]
    if (!section) {
      const known = [...Object.keys(s.top), ...Object.keys(s.sections).map(n => `[${prefix}${n}]`)].join(', ')
      throw new ConfigError(
        isTable(v)
          ? `${where}: unknown section [${prefix}${k}]: expected one of ${Object.keys(s.sections)
              .map(n => `[${prefix}${n}]`)
              .join(', ')}`
          : `${where}: unknown key ${prefix}${k}: expected one of ${known}`,
      )
    }
    const name = prefix + k
    if (!isTable(v)) throw new ConfigError(`${where}: ${name} = ${show(v)} is not valid: expected a section [${name}]`)
    const target = base[k] as Record<string, unknown>
    for (const [sk, sv] of Object.entries(v)) {
      const skey = section.keys[sk]
      if (!skey) {
        throw new ConfigError(`${where}: unknown key ${name}.${sk}: keys in [${name}] are ${Object.keys(section.keys).join(', ')}`)
      }
      target[sk] = checkValue(skey, sv, where, `${name}.${sk}`)
    }
  }
}

/**
 * Rules across keys. `setBy` names the flag that last set a key ("network.use_ipv4" -> "--no-ipv4"),
 * so that a refusal says where each value came from.
 */
export function crossCheck(name: SchemaName, config: Record<string, unknown>, where: string, setBy: Map<string, string>, prefix = ''): void {
  const network = config.network as Record<string, unknown> | undefined
  if ((SERVER_NAMES as readonly string[]).includes(name) && network && network.use_ipv4 === false && network.use_ipv6 === false) {
    const from = (path: string): string => (setBy.has(path) ? `flag ${setBy.get(path)}` : where)
    const [v4, v6] = [from('network.use_ipv4'), from('network.use_ipv6')]
    throw new ConfigError(
      `${v4 === v6 ? v4 : `${v4} and ${v6}`}: ${prefix}network.use_ipv4 and ${prefix}network.use_ipv6 are both false: expected at least one of them to be true`,
    )
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

/** A config file as a TOML document; ConfigError when it cannot be read or parsed. */
export function readDocument(file: string): Record<string, unknown> {
  const where = `config file ${file}`
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error)
    throw new ConfigError(`${where} could not be read (${code}): check the path given with -c/--config`)
  }
  try {
    return parse(text) as Record<string, unknown>
  } catch (error) {
    const detail = error instanceof TomlError ? `line ${error.line}, column ${error.column}: ${error.message.split('\n')[0]}` : String(error)
    throw new ConfigError(`${where} is not valid TOML: ${detail}`)
  }
}

/**
 * Defaults, then the file (if any), then flags. Throws ConfigError before anything starts.
 * `socket_workers = 0` stays 0 here (so `config print` shows what was written); the runtime
 * resolves it (resolveWorkerCount).
 */
export function loadConfig<N extends SchemaName>(name: N, options: LoadOptions = {}): ConfigFor<N> {
  return configFrom(name, options.file === undefined ? undefined : {file: options.file, doc: readDocument(options.file)}, options.overrides ?? [])
}

export function configFrom<N extends SchemaName>(
  name: N,
  source: {file: string; doc: Record<string, unknown>} | undefined,
  overrides: Override[],
): ConfigFor<N> {
  const s = SCHEMAS[name] as unknown as Schema
  const config = defaultsOf(s) as Record<string, unknown>
  const where = source ? `config file ${source.file}` : 'defaults'
  if (source) applyDocument(s, config, source.doc, where)
  crossCheck(name, config, where, applyOverrides(s, config, overrides))
  return config as ConfigFor<N>
}

/** Flags over a config; returns which flag set each key path (for crossCheck's messages). */
export function applyOverrides(s: Schema, config: Record<string, unknown>, overrides: Override[]): Map<string, string> {
  const setBy = new Map<string, string>()
  for (const o of overrides) {
    const [first, second] = o.path.split('.')
    const key = second === undefined ? s.top[first] : s.sections[first]?.keys[second]
    if (!key) throw new Error(`internal: flag ${o.flag} names unknown key ${o.path}`)
    const value = checkValue(key, o.value, `flag ${o.flag}`, o.path)
    if (second === undefined) config[first] = value
    else (config[first] as Record<string, unknown>)[second] = value
    setBy.set(o.path, o.flag)
  }
  return setBy
}

export type ServerConfig = ConfigFor<ServerName>
