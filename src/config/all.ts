/**
 * The config of `tracker serve all`: UDP, HTTP and WebTorrent from one process tree and one file.
 * What one process has once sits at the top of the file (log, pid file, metrics endpoint, access
 * list, privilege drop); each protocol's own keys sit in its table (`[udp]`, `[udp.network]`, ...),
 * with `enabled` to leave a protocol out. Each enabled protocol gets a whole config of its own
 * schema, so the runtime and the workers see exactly what `serve PROTOCOL` gives them.
 */
import {isIP} from 'node:net'
import {formatSocketAddress, parseSocketAddress} from './address.js'
import {applyDocument, applyOverrides, ConfigError, crossCheck, isTable, type Override, readDocument} from './load.js'
import {bool, type ConfigOf, defaultsOf, type Keys, type Schema, schema, type Section} from './schema.js'
import {SCHEMAS, SERVER_NAMES, type ConfigFor, type ServerName} from './schemas.js'
import {accessList, metrics, privileges, serverTop} from './sections.js'

/** Top-level keys and sections of a server schema that an `all` config holds once, for every protocol. */
const SHARED_TOP = ['log_level', 'log_format', 'pid_file'] as const
const SHARED_SECTIONS = ['metrics', 'privileges', 'access_list'] as const
const isShared = (k: string): boolean => (SHARED_TOP as readonly string[]).includes(k) || (SHARED_SECTIONS as readonly string[]).includes(k)

const {log_level, log_format, pid_file} = serverTop('all')

/** The shared part: the top of an `all` file. */
export const allSharedSchema = schema(
  'all',
  'UDP, HTTP and WebTorrent trackers in one process tree',
  {log_level, log_format, pid_file: {...pid_file, default: './tracker-all.pid'}},
  {
    metrics: {
      ...metrics(9000),
      help: `Prometheus endpoint (text format at /metrics), one for every protocol: each
tracker_* series carries a protocol label (udp, http, ws). On by default and bound
to loopback; port 9000, where \`tracker top\` looks first.`,
    },
    privileges,
    access_list: {...accessList, help: `${accessList.help}\nOne list for every protocol, read once per load or reload.`},
  },
)

/** A protocol's table: its schema without the shared keys, and `enabled`. */
function protocolPart(s: Schema): Schema {
  const top: Keys = {enabled: bool(true, `Serve the ${s.title}.`)}
  for (const [k, key] of Object.entries(s.top)) if (!isShared(k)) top[k] = key
  const sections: Record<string, Section> = {}
  for (const [k, section] of Object.entries(s.sections)) if (!isShared(k)) sections[k] = section
  return {name: s.name, title: s.title, top, sections}
}

export const PROTOCOL_PARTS: Record<ServerName, Schema> = {udp: protocolPart(SCHEMAS.udp), http: protocolPart(SCHEMAS.http), ws: protocolPart(SCHEMAS.ws)}

export type AllSharedConfig = ConfigOf<typeof allSharedSchema>
/** A loaded `all` config: the shared values, and each protocol's whole config (shared values included) with `enabled`. */
export type AllConfig = AllSharedConfig & {[P in ServerName]: ConfigFor<P> & {enabled: boolean}}

/** The enabled protocols of an `all` config, each with its whole config, in the order UDP, HTTP, WS. */
export function enabledProtocols(config: AllConfig): {protocol: ServerName; config: ConfigFor<ServerName>}[] {
  return SERVER_NAMES.filter(p => config[p].enabled).map(protocol => ({protocol, config: config[protocol]}))
}

/** The flags that may name an address without its port in `serve all` (each protocol keeps its port). */
const HOST_ONLY = new Set(['network.address_ipv4', 'network.address_ipv6'])

/**
 * Defaults, then the file, then flags. Flags of `serve all` use the paths of a server config: the
 * shared ones (`metrics.*`, `log_*`) set the top, the others every protocol; `--ipv4`/`--ipv6`
 * give an address without a port, which every protocol serves on its own port.
 */
export function loadAllConfig(options: {file?: string; overrides?: Override[]} = {}): AllConfig {
  const {file, overrides = []} = options
  return allConfigFrom(file, file === undefined ? {} : readDocument(file), overrides)
}

/** An `all` config from a parsed file (`file` names it in errors; undefined for the defaults). */
export function allConfigFrom(file: string | undefined, doc: Record<string, unknown>, overrides: Override[]): AllConfig {
  const where = file === undefined ? 'defaults' : `config file ${file}`
  const shared = defaultsOf(allSharedSchema) as Record<string, unknown>
  const parts: Record<string, Record<string, unknown>> = {}
  for (const p of SERVER_NAMES) parts[p] = defaultsOf(PROTOCOL_PARTS[p]) as Record<string, unknown>

  const top: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(doc)) {
    if (!(SERVER_NAMES as readonly string[]).includes(k)) {
      top[k] = v
      continue
    }
    if (!isTable(v)) throw new ConfigError(`${where}: ${k} = ${JSON.stringify(v)} is not valid: expected a section [${k}]`)
    for (const inner of Object.keys(v)) {
      if (isShared(inner))
        throw new ConfigError(
          `${where}: ${k}.${inner}: ${SHARED_TOP.includes(inner as never) ? inner : `[${inner}]`} is shared by every protocol of an "all" config (one process tree): set it at the top of the file, not in [${k}]`,
        )
    }
    applyDocument(PROTOCOL_PARTS[k as ServerName], parts[k], v, where, `${k}.`)
  }
  try {
    applyDocument(allSharedSchema, shared, top, where)
  } catch (error) {
    // The shared schema does not know the protocol tables: name them among what is expected.
    if (error instanceof ConfigError && /: unknown (key|section) [^:]+: expected one of /.test(error.message))
      throw new ConfigError(`${error.message}, [udp], [http], [ws]`)
    throw error
  }

  const sharedOverrides = overrides.filter(o => isShared(o.path.split('.')[0]))
  applyOverrides(allSharedSchema, shared, sharedOverrides)
  const out: Record<string, unknown> = {...shared}
  for (const p of SERVER_NAMES) {
    const s = SCHEMAS[p] as unknown as Schema
    const config = {...defaultsOf(s), ...structuredClone(parts[p]), ...structuredClone(shared)} as Record<string, unknown>
    const own = overrides.filter(o => !isShared(o.path.split('.')[0])).map(o => (HOST_ONLY.has(o.path) ? withPort(o, config) : o))
    crossCheck(p, config, where, applyOverrides(s, config, own), `${p}.`)
    out[p] = config
  }
  const all = out as AllConfig
  if (!SERVER_NAMES.some(p => all[p].enabled))
    throw new ConfigError(`${where}: udp.enabled, http.enabled and ws.enabled are all false: expected at least one protocol to serve`)
  checkTcpAddresses(all, where)
  return all
}

/**
 * HTTP and WS both listen on TCP. On one address and port the second would fail to bind, or
 * worse: worker processes get their listening socket from the primary by address, so with
 * several workers WS would be handed HTTP's socket. Port 0 is one such address.
 */
function checkTcpAddresses(c: AllConfig, where: string): void {
  if (!c.http.enabled || !c.ws.enabled) return
  for (const [use, key] of [
    ['use_ipv4', 'address_ipv4'],
    ['use_ipv6', 'address_ipv6'],
  ] as const) {
    const address = c.http.network[key]
    if (!c.http.network[use] || !c.ws.network[use] || address !== c.ws.network[key]) continue
    const portZero = parseSocketAddress(address)!.port === 0
    if (portZero && c.http.socket_workers === 1 && c.ws.socket_workers === 1) continue
    throw new ConfigError(
      `${where}: http.network.${key} and ws.network.${key} are both ${JSON.stringify(address)}: ` +
        (portZero
          ? 'port 0 with several workers would give both protocols one socket; give one of them a port of its own or another address'
          : 'HTTP and WS both listen on TCP, so they need different ports (or addresses)'),
    )
  }
}

/** `--ipv4 127.0.0.1` in `serve all`: the protocol's configured address with that host (checked as any address then). */
function withPort(o: Override, config: Record<string, unknown>): Override {
  const value = String(o.value)
  const host = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value
  if (isIP(host) === 0 && /:\d+$/.test(value))
    throw new ConfigError(
      `flag ${o.flag}: ${value} names a port; in \`serve all\` ${o.flag} takes an address only (each protocol keeps its own port): set ports in [udp.network], [http.network] and [ws.network]`,
    )
  const current = parseSocketAddress(String((config.network as Record<string, unknown>)[o.path.split('.')[1]]))!
  return {...o, value: formatSocketAddress(host, current.port)}
}

/** The printable document of an `all` config: shared keys at the top, each protocol's own keys in its table. */
export function allDocument(config?: AllConfig): {shared: Record<string, unknown>; parts: Record<ServerName, Record<string, unknown>>} {
  const c = (config ?? loadAllConfig()) as unknown as Record<string, Record<string, unknown>>
  const shared: Record<string, unknown> = {}
  for (const k of [...SHARED_TOP, ...SHARED_SECTIONS]) shared[k] = c[k]
  const parts = {} as Record<ServerName, Record<string, unknown>>
  for (const p of SERVER_NAMES) {
    parts[p] = {}
    for (const k of [...Object.keys(PROTOCOL_PARTS[p].top), ...Object.keys(PROTOCOL_PARTS[p].sections)]) parts[p][k] = c[p][k]
  }
  return {shared, parts}
}
