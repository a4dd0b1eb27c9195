import {AccessListError} from '../accesslist/index.js'
import {ConfigError, loadConfig, type Override, type ServerName} from '../config/index.js'
import {PidFileError} from '../process/status.js'
import {BindError} from './listen.js'
import {runTracker} from './runtime/supervisor.js'
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
export async function serve(protocol: ServerName, file: string | undefined, overrides: Override[]): Promise<RunningTracker> {
  try {
    const config = loadConfig(protocol, {file, overrides})
    return await runTracker({protocol, config, workerModule: WORKER_MODULES[protocol]}, {installSignals: true, exitOnStop: true})
  } catch (error) {
    if (error instanceof ConfigError || error instanceof AccessListError || error instanceof TlsError || error instanceof PidFileError)
      throw new UserError(error.message)
    if (error instanceof BindError) throw new UserError(error.message + bindHint(error.code))
    throw error
  }
}

/** What to do about the usual bind failures, by errno code. */
function bindHint(code: string | undefined): string {
  switch (code) {
    case 'EADDRINUSE':
      return '\nAnother process (perhaps another tracker) holds that address: stop it, or choose another address in the config or with --ipv4/--ipv6.'
    case 'EACCES':
      return '\nPorts below 1024 need root or CAP_NET_BIND_SERVICE; choose a higher port or grant the capability.'
    case 'EADDRNOTAVAIL':
      return '\nThat address is not configured on this machine; check the address in the config.'
    default:
      return ''
  }
}
