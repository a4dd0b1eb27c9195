/**
 * Node opens its inspector on 127.0.0.1:9229 when a process without a SIGUSR1 handler gets
 * SIGUSR1. Serve commands call this first thing, before any config is read, so that an early
 * `tracker accesslist reload` cannot expose a debugger. Signals that arrive before the runtime
 * takes over are remembered and replayed.
 */
type Sig = 'SIGUSR1' | 'SIGINT' | 'SIGTERM'
const early: Sig[] = []
const remember = (sig: Sig) => () => {
  early.push(sig)
}
const placeholders = new Map<Sig, () => void>()

export function installEarlySignalHandlers(): void {
  if (placeholders.size > 0) return
  for (const sig of ['SIGUSR1', 'SIGINT', 'SIGTERM'] as const) {
    const fn = remember(sig)
    placeholders.set(sig, fn)
    process.on(sig, fn)
  }
}

/** Replace the placeholders with real handlers and replay anything that arrived early. */
export function takeOverSignals(handlers: Record<Sig, () => void>): void {
  for (const sig of ['SIGUSR1', 'SIGINT', 'SIGTERM'] as const) {
    process.on(sig, handlers[sig])
    const fn = placeholders.get(sig)
    if (fn) process.off(sig, fn)
  }
  placeholders.clear()
  for (const sig of early.splice(0)) handlers[sig]()
}
