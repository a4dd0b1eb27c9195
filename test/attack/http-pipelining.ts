/**
 * Class 2: pipelining. 1,000 valid announces into one torrent from one connection, in one write,
 * each with a new peer id: reply k must count k other leechers (so all are answered, in order),
 * and the connection must still serve afterwards. The second client does not read until it has
 * written everything, and asks for peers as dictionaries (compact=0): about 3 MB of replies, more
 * than the socket buffers hold, so the tracker must stop reading (backpressure) rather than fail.
 */
import {randomBytes} from 'node:crypto'
import {announcePath} from '../../src/protocol/http/client.js'
import {decode} from '../http-client.js'
import {openHttp, sleep} from './net.js'
import type {Attack} from './suite.js'

const COUNT = 1000

function pipelining(name: string, server: 'http', readLate: boolean): Attack {
  return {
    name,
    server,
    workers: 'both',
    fast: true,
    budgetS: 60,
    async run(ctx) {
      const t = await ctx.tracker({protocol: 'http'})
      const c = await openHttp(ctx, t.port)
      const infoHash = randomBytes(20)
      const requests = Array.from(
        {length: COUNT},
        (_, i) => `GET ${announcePath({infoHash, peerId: randomBytes(20), port: 10_000 + i, left: 1, compact: !readLate})} HTTP/1.1\r\nHost: localhost\r\n\r\n`,
      )
      const started = Date.now()
      if (readLate) c.socket.pause()
      c.send(requests.join(''))
      if (readLate) {
        await sleep(2000)
        c.socket.resume()
      }
      let inOrder = 0
      let outOfOrder = 0
      let stop = ''
      for (let k = 0; k < COUNT; k++) {
        try {
          const r = await c.next(5000)
          const body = decode(r.body)
          if (r.status === 200 && body.incomplete === k) inOrder++
          else outOfOrder++
        } catch (error) {
          stop = c.ended ? 'then the connection was closed' : `then ${(error as Error).message}`
          break
        }
      }
      const seconds = ((Date.now() - started) / 1000).toFixed(1)
      let after = ''
      if (!stop) {
        // The connection still serves.
        c.send(`GET ${announcePath({infoHash, peerId: randomBytes(20), port: 9999, left: 1})} HTTP/1.1\r\nHost: localhost\r\n\r\n`)
        after = await c.next(3000).then(
          r => (r.status === 200 ? '' : `; the next request got ${r.status}`),
          () => '; the next request got no reply',
        )
      }
      const resets = await t.metric('tracker_dropped_total', {reason: 'bad_request'})
      return {
        held: inOrder === COUNT && !stop && !after,
        evidence: `${inOrder}/${COUNT} answered in order${outOfOrder ? `, ${outOfOrder} wrong` : ''} in ${seconds} s${stop ? `, ${stop}` : ''}${after}; bad_request closes ${resets ?? '?'}`,
      }
    },
  }
}

export const PIPELINING_ATTACKS: Attack[] = [pipelining('2.pipelining.one-write', 'http', false), pipelining('2.pipelining.write-all-then-read', 'http', true)]
