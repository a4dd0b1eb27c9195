/** Leveled logging to stderr. One line per event; no per-request logging on hot paths. */
export const LOG_LEVELS = ['off', 'error', 'warn', 'info', 'debug', 'trace'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/** text: `TIME LEVEL [worker 1] message`, for people; json: one object per line, for log shippers. */
export const LOG_FORMATS = ['text', 'json'] as const
export type LogFormat = (typeof LOG_FORMATS)[number]

export interface Logger {
  error(msg: string): void
  warn(msg: string): void
  info(msg: string): void
  debug(msg: string): void
  enabled(level: LogLevel): boolean
}

export interface LoggerOptions {
  format?: LogFormat
  /** Who logs (e.g. {worker: 1}): a `[worker 1] ` prefix in text, keys of each object in json. */
  fields?: Record<string, string | number>
  write?: (line: string) => void
}

// A message may carry client-supplied text (a file's line, a peer's error): it must not forge lines.
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are what it finds
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f\u2028\u2029]/g
const SHORT: Record<string, string> = {'\n': '\\n', '\r': '\\r'}
const escapeControl = (text: string): string => text.replace(CONTROL, c => SHORT[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)

export function createLogger(level: LogLevel, options: LoggerOptions = {}): Logger {
  const {format = 'text', fields = {}, write = (line: string) => process.stderr.write(line)} = options
  const max = LOG_LEVELS.indexOf(level)
  const prefix = Object.entries(fields)
    .map(([k, v]) => `[${k} ${escapeControl(String(v))}] `)
    .join('')
  const line =
    format === 'json'
      ? // JSON.stringify escapes quotes, backslashes and C0 controls (lone surrogates too); U+2028/9 are escaped for readers that split on them.
        (lvl: LogLevel, msg: string) => `${escapeControl(JSON.stringify({time: new Date().toISOString(), level: lvl, msg, ...fields}))}\n`
      : (lvl: LogLevel, msg: string) => `${new Date().toISOString()} ${lvl.toUpperCase().padEnd(5)} ${prefix}${escapeControl(msg)}\n`
  const emit = (lvl: LogLevel, msg: string): void => {
    if (LOG_LEVELS.indexOf(lvl) > max) return
    write(line(lvl, msg))
  }
  return {
    error: msg => emit('error', msg),
    warn: msg => emit('warn', msg),
    info: msg => emit('info', msg),
    debug: msg => emit('debug', msg),
    enabled: lvl => LOG_LEVELS.indexOf(lvl) <= max && lvl !== 'off',
  }
}
