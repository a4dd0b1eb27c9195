/** The WebSocket worker's counters: request and response types, drop and refusal reasons (metric labels). */
import {indexes, TrafficStats} from '../../metrics/index.js'

const REQUEST_TYPES = ['announce', 'scrape', 'full_scrape'] as const
const RESPONSE_TYPES = ['announce', 'scrape', 'full_scrape', 'offer', 'answer', 'error'] as const
/** Connections closed and messages not delivered, by reason. */
const DROP_REASONS = [
  'idle_timeout',
  'ping_timeout',
  'send_timeout',
  'slow_consumer',
  'max_connections',
  'answer_target_gone',
  'tls_error',
  'tls_handshake_timeout',
  'request_timeout',
  'handshake_evicted',
] as const
const REFUSAL_REASONS = [
  'access_list',
  'invalid_request',
  'message_too_large',
  'full_scrape',
  'peer_id',
  'no_offer',
  'too_many_offers',
  'torrents_per_connection',
] as const

export const REQ = indexes(REQUEST_TYPES)
export const RES = indexes(RESPONSE_TYPES)
export const DROP = indexes(DROP_REASONS)
export const REFUSED = indexes(REFUSAL_REASONS)

/** Drop reasons indexed by HandshakeDrop (handshakes.ts). */
export const DROP_HANDSHAKE = [DROP.tls_error, DROP.tls_handshake_timeout, DROP.request_timeout, DROP.handshake_evicted]

export const wsStats = (): TrafficStats => new TrafficStats(REQUEST_TYPES, RESPONSE_TYPES, DROP_REASONS, REFUSAL_REASONS)
