import type {ConfigOf} from './schema.js'
import {httpSchema} from './http-schema.js'
import {loadtestHttpSchema, loadtestUdpSchema, loadtestWsSchema} from './loadtest-schemas.js'
import {udpSchema} from './udp-schema.js'
import {wsSchema} from './ws-schema.js'

/** Every schema by the name `config print` and the loaders know it by. */
export const SCHEMAS = {
  udp: udpSchema,
  http: httpSchema,
  ws: wsSchema,
  'loadtest-udp': loadtestUdpSchema,
  'loadtest-http': loadtestHttpSchema,
  'loadtest-ws': loadtestWsSchema,
} as const

export type SchemaName = keyof typeof SCHEMAS
export const SCHEMA_NAMES = Object.keys(SCHEMAS) as SchemaName[]
export const SERVER_NAMES = ['udp', 'http', 'ws'] as const
export type ServerName = (typeof SERVER_NAMES)[number]
export type ConfigFor<N extends SchemaName> = ConfigOf<(typeof SCHEMAS)[N]>
