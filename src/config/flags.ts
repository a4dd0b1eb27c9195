import {Flags} from '@oclif/core'
import {LOG_LEVELS} from '../util/log.js'
import type {Override} from './load.js'

/** Flags every `serve` command takes; they override the config file. */
export const serverFlags = {
  config: Flags.string({char: 'c', description: 'TOML config file (see `tracker config print`)', helpValue: 'FILE'}),
  ipv4: Flags.string({description: 'IPv4 address and port to serve on (sets network.address_ipv4, use_ipv4 = true)', helpValue: 'ADDR:PORT'}),
  ipv6: Flags.string({description: 'IPv6 address and port to serve on (sets network.address_ipv6, use_ipv6 = true)', helpValue: '[ADDR]:PORT'}),
  workers: Flags.integer({description: 'worker processes, 0 = one per CPU (socket_workers)', helpValue: 'N'}),
  'log-level': Flags.string({description: 'log level (log_level)', options: [...LOG_LEVELS]}),
}

export interface ServerFlagValues {
  ipv4?: string
  ipv6?: string
  workers?: number
  'log-level'?: string
}

export function serverOverrides(flags: ServerFlagValues): Override[] {
  const out: Override[] = []
  if (flags.ipv4 !== undefined) {
    out.push({path: 'network.address_ipv4', value: flags.ipv4, flag: '--ipv4'})
    out.push({path: 'network.use_ipv4', value: true, flag: '--ipv4'})
  }
  if (flags.ipv6 !== undefined) {
    out.push({path: 'network.address_ipv6', value: flags.ipv6, flag: '--ipv6'})
    out.push({path: 'network.use_ipv6', value: true, flag: '--ipv6'})
  }
  if (flags.workers !== undefined) out.push({path: 'socket_workers', value: flags.workers, flag: '--workers'})
  if (flags['log-level'] !== undefined) out.push({path: 'log_level', value: flags['log-level'], flag: '--log-level'})
  return out
}

/** Flags every `loadtest` command takes. */
export const loadtestFlags = {
  config: Flags.string({char: 'c', description: 'TOML config file (see `tracker config print loadtest-...`)', helpValue: 'FILE'}),
  duration: Flags.integer({description: 'seconds to measure after the warm-up, then print the summary (0 = until Ctrl-C)', helpValue: 'N'}),
  warmup: Flags.integer({description: 'seconds of load first, sent but not counted (warmup; default 1)', helpValue: 'SECONDS'}),
  server: Flags.string({description: 'tracker address (server_address)', helpValue: 'ADDR:PORT'}),
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
