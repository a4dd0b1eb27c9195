/**
 * The server's answer to a WebSocket upgrade request (RFC 6455 4.2.2), whatever reads the request
 * (Node's HTTP server, or the tracker's own head parser on batched I/O): 101 with the accept key,
 * or an HTTP error whose body says what was wrong. Pure.
 */
import {acceptKey, isWebSocketKey} from './frame.js'

/** What of an upgrade request the answer depends on (header values as sent, or undefined). */
export interface UpgradeRequest {
  method: string
  upgrade: string | undefined
  version: string | undefined
  key: string | undefined
}

export interface UpgradeAnswer {
  accepted: boolean
  /** The whole response: head, and for a refusal its body. */
  response: string
}

/** What a plain HTTP request to the WebSocket port gets (426). */
export const NOT_A_WEBSOCKET = 'This is a WebTorrent tracker: connect with a WebSocket.\n'
/** What an upgrade gets when every slot is a WebSocket (503). */
export const AT_CONNECTION_LIMIT = 'The tracker is at its connection limit; try again later.\n'

/** An HTTP error response that closes the connection; `why` is the body. */
export function httpErrorResponse(status: string, why: string, extra = ''): string {
  return `HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(why)}\r\n${extra}\r\n${why}`
}

export function answerUpgrade(r: UpgradeRequest): UpgradeAnswer {
  const refused = (status: string, why: string, extra = '') => ({accepted: false, response: httpErrorResponse(status, why, extra)})
  if (r.method !== 'GET') return refused('405 Method Not Allowed', 'A WebSocket handshake is a GET request.\n')
  if (!/\bwebsocket\b/i.test(r.upgrade ?? '')) return refused('400 Bad Request', 'Upgrade: websocket expected.\n')
  if (r.version !== '13') return refused('426 Upgrade Required', 'Only WebSocket version 13 is supported.\n', 'Sec-WebSocket-Version: 13\r\n')
  if (!isWebSocketKey(r.key)) return refused('400 Bad Request', 'Invalid Sec-WebSocket-Key.\n')
  return {
    accepted: true,
    response: `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(r.key)}\r\n\r\n`,
  }
}
