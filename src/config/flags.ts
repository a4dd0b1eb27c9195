import {Flags} from '@oclif/core'
import {LOG_FORMATS, LOG_LEVELS} from '../util/log.js'
import type {Override} from './load.js'

/**
 * Flags every `serve` command takes (and `config print`, to show their effect); they override the
 * config file. Addresses on the command line are the whole answer to "where": naming one family's
 * address turns the other family off unless it is named too, whatever the file says, so that
 * `--ipv4 127.0.0.1:6969` cannot also serve every IPv6 interface by default.
 */
export const serverFlags = {
  config: Flags.string({char: 'c', description: 'TOML config file (see `tracker config print`)', helpValue: 'FILE'}),
  ipv4: Flags.string({
    description: 'serve IPv4 on this address (network.address_ipv4; localhost means 127.0.0.1). Without --ipv6, IPv6 is off, whatever the config file says',
    helpValue: 'ADDR:PORT',
  }),
  ipv6: Flags.string({
    description: 'serve IPv6 on this address (network.address_ipv6), e.g. [::1]:6969. Without --ipv4, IPv4 is off, whatever the config file says',
    helpValue: '[ADDR]:PORT',
  }),
  'no-ipv4': Flags.boolean({description: 'do not serve IPv4 (use_ipv4 = false)', exclusive: ['ipv4']}),
  'no-ipv6': Flags.boolean({description: 'do not serve IPv6 (use_ipv6 = false)', exclusive: ['ipv6']}),
  metrics: Flags.string({
    description: 'serve the Prometheus endpoint on this address ([metrics] prometheus_endpoint_address, and turns it on; localhost means 127.0.0.1)',
    helpValue: 'ADDR:PORT',
  }),
  workers: Flags.integer({description: 'worker processes, 0 = one per CPU (socket_workers)', helpValue: 'N'}),
  'log-level': Flags.string({description: 'log level (log_level)', options: [...LOG_LEVELS]}),
  'log-format': Flags.string({description: 'log lines as text or one JSON object per line (log_format)', options: [...LOG_FORMATS]}),
}

/**
 * The flags of `tracker serve all` (and `config print all`): as `serverFlags`, but every protocol
 * keeps its own port, so `--ipv4` and `--ipv6` take an address without one.
 */
export const allServerFlags = {
  ...serverFlags,
  ipv4: Flags.string({
    description: 'serve IPv4 on this address, each protocol on its own port (e.g. 127.0.0.1). Without --ipv6, IPv6 is off, whatever the config file says',
    helpValue: 'ADDR',
  }),
  ipv6: Flags.string({
    description: 'serve IPv6 on this address, each protocol on its own port (e.g. ::1). Without --ipv4, IPv4 is off, whatever the config file says',
    helpValue: 'ADDR',
  }),
  workers: Flags.integer({description: 'worker processes of each protocol, 0 = one per CPU (socket_workers)', helpValue: 'N'}),
}

export interface ServerFlagValues {
  ipv4?: string
  ipv6?: string
  'no-ipv4'?: boolean
  'no-ipv6'?: boolean
  metrics?: string
  workers?: number
  'log-level'?: string
  'log-format'?: string
}

/** The server flags that were given, as the user wrote them (for `config print` of a load tester's config, which takes none). */
export function givenServerFlags(flags: ServerFlagValues): string[] {
  return (['ipv4', 'ipv6', 'no-ipv4', 'no-ipv6', 'metrics', 'workers', 'log-level', 'log-format'] as const)
    .filter(name => flags[name] !== undefined && flags[name] !== false)
    .map(name => `--${name}`)
}

export function serverOverrides(flags: ServerFlagValues): Override[] {
  const out: Override[] = []
  const {ipv4, ipv6} = flags
  if (ipv4 !== undefined) {
    out.push({path: 'network.address_ipv4', value: ipv4, flag: '--ipv4'})
    out.push({path: 'network.use_ipv4', value: true, flag: '--ipv4'})
    if (ipv6 === undefined) out.push({path: 'network.use_ipv6', value: false, flag: '--ipv4 (without --ipv6)'})
  }
  if (ipv6 !== undefined) {
    out.push({path: 'network.address_ipv6', value: ipv6, flag: '--ipv6'})
    out.push({path: 'network.use_ipv6', value: true, flag: '--ipv6'})
    if (ipv4 === undefined) out.push({path: 'network.use_ipv4', value: false, flag: '--ipv6 (without --ipv4)'})
  }
  if (flags['no-ipv4']) out.push({path: 'network.use_ipv4', value: false, flag: '--no-ipv4'})
  if (flags['no-ipv6']) out.push({path: 'network.use_ipv6', value: false, flag: '--no-ipv6'})
  if (flags.metrics !== undefined) {
    out.push({path: 'metrics.prometheus_endpoint_address', value: flags.metrics, flag: '--metrics'})
    out.push({path: 'metrics.run_prometheus_endpoint', value: true, flag: '--metrics'})
  }
  if (flags.workers !== undefined) out.push({path: 'socket_workers', value: flags.workers, flag: '--workers'})
  if (flags['log-level'] !== undefined) out.push({path: 'log_level', value: flags['log-level'], flag: '--log-level'})
  if (flags['log-format'] !== undefined) out.push({path: 'log_format', value: flags['log-format'], flag: '--log-format'})
  return out
}

/** Flags every `loadtest` command takes. */
export const loadtestFlags = {
  config: Flags.string({char: 'c', description: 'TOML config file (see `tracker config print loadtest-...`)', helpValue: 'FILE'}),
  duration: Flags.integer({description: 'seconds to measure after the warm-up, then print the summary (0 = until Ctrl-C)', helpValue: 'N'}),
  warmup: Flags.integer({description: 'seconds of load first, sent but not counted (warmup; default 1)', helpValue: 'SECONDS'}),
  server: Flags.string({description: 'tracker address (server_address; localhost means 127.0.0.1)', helpValue: 'ADDR:PORT'}),
  'log-level': Flags.string({description: 'log level (log_level)', options: [...LOG_LEVELS]}),
  json: Flags.boolean({description: 'print the summary as JSON on stdout (settings, version, start time; progress stays on stderr)'}),
}

export interface LoadtestFlagValues {
  duration?: number
  warmup?: number
  server?: string
  'log-level'?: string
}

export function loadtestOverrides(flags: LoadtestFlagValues): Override[] {
  const out: Override[] = []
  if (flags.duration !== undefined) out.push({path: 'duration', value: flags.duration, flag: '--duration'})
  if (flags.warmup !== undefined) out.push({path: 'warmup', value: flags.warmup, flag: '--warmup'})
  if (flags.server !== undefined) out.push({path: 'server_address', value: flags.server, flag: '--server'})
  if (flags['log-level'] !== undefined) out.push({path: 'log_level', value: flags['log-level'], flag: '--log-level'})
  return out
}
