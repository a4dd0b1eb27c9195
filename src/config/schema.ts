/**
 * Config schemas: every key's type, default, range and help text, in one place. Printing,
 * loading, validation and the TypeScript types of loaded configs all derive from these.
 */

export type KeyKind = 'integer' | 'number' | 'boolean' | 'string' | 'enum' | 'address'

export interface Key<T> {
  kind: KeyKind
  default: T
  help: string
  min?: number
  max?: number
  values?: readonly string[]
  /** For addresses: the IP version the key requires, if any. */
  family?: 4 | 6
}

export const int = (d: number, help: string, min = 0, max = Number.MAX_SAFE_INTEGER): Key<number> => ({kind: 'integer', default: d, help, min, max})
export const num = (d: number, help: string, min = 0, max = Number.MAX_VALUE): Key<number> => ({kind: 'number', default: d, help, min, max})
export const bool = (d: boolean, help: string): Key<boolean> => ({kind: 'boolean', default: d, help})
export const str = (d: string, help: string): Key<string> => ({kind: 'string', default: d, help})
export const oneOf = <V extends string>(values: readonly V[], d: V, help: string): Key<V> => ({kind: 'enum', default: d, help, values})
export const addr = (d: string, help: string, family?: 4 | 6): Key<string> => ({kind: 'address', default: d, help, family})

// biome-ignore lint/suspicious/noExplicitAny: keys of every value type in one record
export type Keys = Record<string, Key<any>>
export interface Section<K extends Keys = Keys> {
  help?: string
  keys: K
}

export interface Schema<T extends Keys = Keys, S extends Record<string, Section> = Record<string, Section>> {
  name: string
  title: string
  top: T
  sections: S
}

export type ValuesOf<K extends Keys> = {-readonly [P in keyof K]: K[P] extends Key<infer V> ? V : never}
export type ConfigOf<S extends Schema> = ValuesOf<S['top']> & {-readonly [P in keyof S['sections']]: ValuesOf<S['sections'][P]['keys']>}

export function schema<T extends Keys, S extends Record<string, Section>>(name: string, title: string, top: T, sections: S): Schema<T, S> {
  return {name, title, top, sections}
}

/** The defaults of a schema as a plain config object. */
export function defaultsOf<S extends Schema>(s: S): ConfigOf<S> {
  const out: Record<string, unknown> = {}
  for (const [k, key] of Object.entries(s.top)) out[k] = key.default
  for (const [name, section] of Object.entries(s.sections)) {
    const values: Record<string, unknown> = {}
    for (const [k, key] of Object.entries(section.keys)) values[k] = key.default
    out[name] = values
  }
  return out as ConfigOf<S>
}

export function describeExpected(key: Key<unknown>): string {
  switch (key.kind) {
    case 'integer':
      return key.max !== undefined && key.max < Number.MAX_SAFE_INTEGER ? `an integer from ${key.min} to ${key.max}` : `an integer >= ${key.min}`
    case 'number':
      return key.max !== undefined && key.max < Number.MAX_VALUE ? `a number from ${key.min} to ${key.max}` : `a number >= ${key.min}`
    case 'boolean':
      return 'true or false'
    case 'string':
      return 'a string'
    case 'enum':
      return `one of ${key.values!.map(v => JSON.stringify(v)).join(', ')}`
    case 'address':
      return key.family === 4
        ? 'an IPv4 "ADDR:PORT" such as "0.0.0.0:6969"'
        : key.family === 6
          ? 'an IPv6 "[ADDR]:PORT" such as "[::]:6969"'
          : '"ADDR:PORT" such as "127.0.0.1:6969" or "[::1]:6969"'
  }
}
