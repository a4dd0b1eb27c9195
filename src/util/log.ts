/** Leveled logging to stderr. One line per event; no per-request logging on hot paths. */
export const LOG_LEVELS = ['off', 'error', 'warn', 'info', 'debug', 'trace'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

export interface Logger {
  error(msg: string): void
  warn(msg: string): void
  info(msg: string): void
  debug(msg: string): void
  enabled(level: LogLevel): boolean
}

export function createLogger(level: LogLevel, prefix = '', write: (line: string) => void = line => process.stderr.write(line)): Logger {
  const max = LOG_LEVELS.indexOf(level)
  const emit = (lvl: LogLevel, msg: string): void => {
    if (LOG_LEVELS.indexOf(lvl) > max) return
    write(`${new Date().toISOString()} ${lvl.toUpperCase().padEnd(5)} ${prefix}${msg}\n`)
  }
  return {
    error: msg => emit('error', msg),
    warn: msg => emit('warn', msg),
    info: msg => emit('info', msg),
    debug: msg => emit('debug', msg),
    enabled: lvl => LOG_LEVELS.indexOf(lvl) <= max && lvl !== 'off',
  }
}
