/**
 * Class 10 (lenient HTTP parsing) and what already held: request smuggling and oversized heads.
 * Each request would be a valid announce but for one defect; the tracker must answer with the
 * status RFC 9112 asks for and close the connection (framing can no longer be trusted).
 */
import {randomBytes} from 'node:crypto'
import {announcePath} from '../../src/protocol/http/client.js'
import {openHttp} from './net.js'
import type {Attack, Context} from './suite.js'

const path = () => announcePath({infoHash: randomBytes(20), peerId: randomBytes(20), port: 6881, left: 1})
const line = () => `GET ${path()} HTTP/1.1\r\nHost: localhost\r\n`

/** Sends `raw` on a fresh connection; held when the reply has `status` and the connection closes. */
async function refused(ctx: Context, port: number, raw: string, status: number): Promise<{held: boolean; evidence: string}> {
  const c = await openHttp(ctx, port)
  c.send(Buffer.from(raw, 'latin1'))
  let got: string
  let ok = false
  try {
    const r = await c.next(3000)
    got = `${r.status}`
    ok = r.status === status
  } catch (error) {
    got = c.ended ? 'closed without a reply' : (error as Error).message
  }
  const closed = await c.closed(2000).then(
    () => true,
    () => false,
  )
  c.close()
  return {held: ok && closed, evidence: `${got}, connection ${closed ? 'closed' : 'still open after 2 s'} (expected ${status} and close)`}
}

function one(name: string, raw: () => string, status: number, fast = true): Attack {
  return {
    name,
    server: 'http',
    workers: 'any',
    fast,
    budgetS: 20,
    async run(ctx) {
      const t = await ctx.tracker({protocol: 'http'})
      return refused(ctx, t.port, raw(), status)
    },
  }
}

/** Several defects of one family against one tracker: held when every one is refused. */
function family(name: string, cases: [string, () => string, number][]): Attack {
  return {
    name,
    server: 'http',
    workers: 'any',
    fast: true,
    budgetS: 30,
    async run(ctx) {
      const t = await ctx.tracker({protocol: 'http'})
      const failed: string[] = []
      for (const [what, raw, status] of cases) {
        const r = await refused(ctx, t.port, raw(), status)
        if (!r.held) failed.push(`${what}: ${r.evidence.replace(/ \(expected.*/, '')}`)
      }
      return {
        held: failed.length === 0,
        evidence: `${cases.length - failed.length}/${cases.length} refused with ${[...new Set(cases.map(c => c[2]))].join('/')} and closed${failed.length ? `; ${failed.join('; ')}` : ''}`,
      }
    },
  }
}

export const PARSING_ATTACKS: Attack[] = [
  // Class 10: each defect its own row, so that a fix shows which it covers.
  one('10.lenient.bare-cr-in-header', () => `${line()}X-Test: a\rb\r\n\r\n`, 400),
  one('10.lenient.nul-in-header-name', () => `${line()}X-\0Test: a\r\n\r\n`, 400),
  one('10.lenient.ctl-in-header-name', () => `${line()}X-\x01Test: a\r\n\r\n`, 400),
  one('10.lenient.del-in-header-name', () => `${line()}X-\x7fTest: a\r\n\r\n`, 400),
  one('10.lenient.space-in-header-name', () => `${line()}X Test: a\r\n\r\n`, 400),
  one('10.lenient.space-before-colon', () => `${line()}X-Test : a\r\n\r\n`, 400),
  one('10.lenient.empty-header-name', () => `${line()}: a\r\n\r\n`, 400),
  one('10.lenient.nul-in-header-value', () => `${line()}X-Test: a\0b\r\n\r\n`, 400),
  one('10.lenient.ctl-in-header-value', () => `${line()}X-Test: a\x01b\r\n\r\n`, 400),
  one('10.lenient.bare-cr-in-request-line', () => `GET ${path()}\rX HTTP/1.1\r\nHost: localhost\r\n\r\n`, 400),
  // Already held: smuggling.
  family('held.smuggling', [
    ['Content-Length with Transfer-Encoding', () => `${line()}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
    ['two different Content-Lengths', () => `${line()}Content-Length: 0\r\nContent-Length: 5\r\n\r\nhello`, 400],
    ['a request body', () => `${line()}Content-Length: 5\r\n\r\nhello`, 400],
    ['Transfer-Encoding: chunked', () => `${line()}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, 400],
  ]),
  // Already held: oversized heads (defaults: 8 KiB line, 16 KiB head, 64 headers).
  family('held.oversized-head', [
    ['request line of 9,000 bytes', () => `GET ${path()}&pad=${'a'.repeat(9000)} HTTP/1.1\r\nHost: localhost\r\n\r\n`, 414],
    ['head of 20,000 bytes', () => `${line()}${Array.from({length: 20}, (_, i) => `X-Pad-${i}: ${'b'.repeat(1000)}\r\n`).join('')}\r\n`, 431],
    ['70 header lines', () => `${line()}${Array.from({length: 70}, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`, 431],
  ]),
]
