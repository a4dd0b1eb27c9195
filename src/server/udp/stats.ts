/** The UDP worker's counters: request and response types, drop and refusal reasons (metric labels). */
import {indexes, TrafficStats} from '../../metrics/index.js'

/** In BEP 15's order of action numbers: a request's action is its index. */
const REQUEST_TYPES = ['connect', 'announce', 'scrape'] as const
const RESPONSE_TYPES = ['connect', 'announce', 'scrape', 'error'] as const
const DROP_REASONS = ['malformed', 'bad_connection_id', 'source_port_zero', 'send_failed'] as const
const REFUSAL_REASONS = ['access_list'] as const

export const REQ = indexes(REQUEST_TYPES)
export const RES = indexes(RESPONSE_TYPES)
export const DROP = indexes(DROP_REASONS)
export const REFUSED = indexes(REFUSAL_REASONS)

export const udpStats = (): TrafficStats => new TrafficStats(REQUEST_TYPES, RESPONSE_TYPES, DROP_REASONS, REFUSAL_REASONS)
