import {AccessListError} from '../accesslist/index.js'
import {ConfigError, enabledProtocols, loadAllConfig, loadConfig, type Override, type ServerName} from '../config/index.js'
import {PidFileError} from '../process/status.js'
import {BindError} from './listen.js'
import {runTrackers} from './runtime/supervisor.js'
import type {RunningTracker} from './runtime/worker-api.js'
import {TlsError} from './tls.js'

const WORKER_MODULES: Record<ServerName, string> = {
  udp: new URL('./udp/worker.js', import.meta.url).href,
  http: new URL('./http/worker.js', import.meta.url).href,
  ws: new URL('./ws/worker.js', import.meta.url).href,
}

/** A problem the user can fix (bad config, bad access list, port in use): no stack trace. */
export class UserError extends Error {}

/** What `tracker serve PROTOCOL` does: load the config, run the tracker until a signal. */
export function serve(protocol: ServerName, file: string | undefined, overrides: Override[]): Promise<RunningTracker> {
  return asUserErrors(() => {
    const config = loadConfig(protocol, {file, overrides})
    return runTrackers([{protocol, config, workerModule: WORKER_MODULES[protocol]}], {installSignals: true, exitOnStop: true})
  })
}

/** What `tracker serve all` does: every enabled protocol of an `all` config as one tracker, until a signal. */
export function serveAll(file: string | undefined, overrides: Override[]): Promise<RunningTracker> {
  return asUserErrors(() => {
    const specs = enabledProtocols(loadAllConfig({file, overrides})).map(({protocol, config}) => ({protocol, config, workerModule: WORKER_MODULES[protocol]}))
    return runTrackers(specs, {installSignals: true, exitOnStop: true})
  })
}

/** Problems the user can fix become UserErrors, with a hint for the usual bind failures. */
async function asUserErrors(run: () => Promise<RunningTracker>): Promise<RunningTracker> {
  try {
    return await run()
  } catch (error) {
    if (error instanceof ConfigError || error instanceof AccessListError || error instanceof TlsError || error instanceof PidFileError)
      throw new UserError(error.message)
    if (error instanceof BindError) throw new UserError(error.message + bindHint(error))
    throw error
  }
}

/** The flag that moves the address of a config key, as BindError names the key. */
const FLAG_OF_KEY: Record<string, string> = {
  '[network] address_ipv4': '--ipv4 ADDR:PORT',
  '[network] address_ipv6': '--ipv6 [ADDR]:PORT',
  '[metrics] prometheus_endpoint_address': '--metrics ADDR:PORT',
}

/** What to do about the usual bind failures, by errno code; each names what moves that address. */
function bindHint(error: BindError): string {
  const flag = FLAG_OF_KEY[error.key]
  const move = flag ? `${flag} or ${error.key} in the config` : `${error.key} in the config`
  switch (error.code) {
    case 'EADDRINUSE':
      return error.key.startsWith('[metrics]')
        ? `\nAnother process (perhaps another tracker of this protocol, whose metrics default to the same port) holds that address: stop it, or move this tracker's metrics endpoint with ${move}.`
        : `\nAnother process (perhaps another tracker) holds that address: stop it, or choose another address with ${move}.`
    case 'EACCES':
      return `\nPorts below 1024 need root or CAP_NET_BIND_SERVICE; choose a higher port with ${move}, or grant the capability.`
    case 'EADDRNOTAVAIL':
      return `\nThat address is not configured on this machine; choose another with ${move}.`
    default:
      return ''
  }
}
