/** The HTTP worker's counters: request and response types, drop and refusal reasons (metric labels). */
import {indexes, TrafficStats} from '../../metrics/index.js'
import {CONNECTION_DROP_REASONS} from './connection.js'

const REQUEST_TYPES = ['announce', 'scrape', 'full_scrape', 'other'] as const
const RESPONSE_TYPES = ['announce', 'scrape', 'full_scrape', 'failure', 'not_found', 'bad_request'] as const
/** Connections the transport closed, then requests given up by forwarding. */
const DROP_REASONS = [...CONNECTION_DROP_REASONS, 'forward_timeout'] as const
const REFUSAL_REASONS = ['access_list', 'invalid_query', 'full_scrape', 'reverse_proxy_header'] as const

export const REQ = indexes(REQUEST_TYPES)
export const RES = indexes(RESPONSE_TYPES)
export const DROP = indexes(DROP_REASONS)
export const REFUSED = indexes(REFUSAL_REASONS)

export const httpStats = (): TrafficStats => new TrafficStats(REQUEST_TYPES, RESPONSE_TYPES, DROP_REASONS, REFUSAL_REASONS)
