/**
 * Class 9: pending WebRTC offers. Two connections announce with 10 offers of unique ids each, as
 * fast as the tracker answers, into torrents that have other peers, for 15 s. The tracker's
 * memory must stay bounded, refusals be counted (offer_limit), and a legitimate pair of peers
 * must still exchange an offer and an answer.
 */
import {LoadSocket} from '../../loadtest/ws-socket.js'
import {binaryId, isAnswer, isAnnounceResponse, isOffer, WsTestClient} from '../ws-client.js'
import {mib, sleep, within} from './net.js'
import {MiB} from './tracker.js'
import type {Attack, Context} from './suite.js'

/** Tracker memory may grow by less than this during the offer flood. */
const OFFER_RSS_BOUND = 64 * MiB
const TORRENTS = 4
const IN_FLIGHT = 4

/** Opens a lean WebSocket (the load generator's) that the case owns. */
async function lean(ctx: Context, port: number, onMessage: (data: Buffer) => void): Promise<LoadSocket> {
  const s = await within(LoadSocket.connect({host: '127.0.0.1', port, tls: false, batched: null, onMessage, onClose: () => {}}), 5000, 'WebSocket', late =>
    late.terminate(),
  )
  ctx.defer(() => s.terminate())
  return s
}

const announce = (infoHash: string, peerId: string, extra: object = {}) =>
  JSON.stringify({action: 'announce', info_hash: infoHash, peer_id: peerId, left: 1, numwant: 10, uploaded: 0, downloaded: 0, ...extra})

/** Two fresh peers on a fresh torrent: B is offered A's offer and answers it. Resolves with ms, rejects if any step fails. */
async function exchange(ctx: Context, port: number): Promise<number> {
  const t0 = performance.now()
  const open = () => within(WsTestClient.open(`ws://127.0.0.1:${port}`), 3000, 'legit WebSocket', late => late.close()).then(c => ctx.own(c))
  const [a, b] = await Promise.all([open(), open()])
  try {
    const ih = binaryId()
    const pa = binaryId()
    const pb = binaryId()
    b.send(announce(ih, pb))
    await b.next(isAnnounceResponse, 3000)
    const offerId = binaryId()
    a.send(announce(ih, pa, {offers: [{offer_id: offerId, offer: {type: 'offer', sdp: 'v=0 legit offer'}}]}))
    const got = await b.next(isOffer, 3000)
    b.send(announce(ih, pb, {answer: {type: 'answer', sdp: 'v=0 legit answer'}, to_peer_id: pa, offer_id: got.offer_id}))
    const back = await a.next(isAnswer, 3000)
    if (back.offer_id !== offerId) throw new Error('the answer came back with another offer id')
    return performance.now() - t0
  } finally {
    a.close()
    b.close()
  }
}

const pendingOffers: Attack = {
  name: '9.pending-offers',
  server: 'ws',
  workers: 'any',
  budgetS: 60,
  async run(ctx) {
    const t = await ctx.tracker({protocol: 'ws'})
    const torrents = Array.from({length: TORRENTS}, () => binaryId())
    // Ten other peers in every torrent (each of the 10 offers finds one), reading and dropping what they are sent.
    let offersSeen = 0
    for (const ih of torrents) {
      for (let k = 0; k < 10; k++) {
        const sink = await lean(ctx, t.port, () => offersSeen++)
        sink.send(announce(ih, binaryId()))
      }
    }
    await sleep(500)
    const rss0 = t.rss()
    let peak = rss0
    const sampler = setInterval(() => (peak = Math.max(peak, t.rss())), 250)
    ctx.defer(() => clearInterval(sampler))
    let offerCounter = 0
    const sdp = 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n' + 'a'.repeat(64)
    const nextAnnounce = (peerId: string, turn: number) =>
      announce(torrents[turn % TORRENTS], peerId, {
        offers: Array.from({length: 10}, () => ({offer_id: String(offerCounter++).padStart(20, '0'), offer: {type: 'offer', sdp}})),
      })
    let answered = 0
    let failures = 0
    let running = true
    const floodMs = ctx.seconds(15, 8) * 1000
    const attackers = await Promise.all(
      Array.from({length: 2}, async () => {
        const peerId = binaryId()
        let turn = 0
        const s: LoadSocket = await lean(ctx, t.port, data => {
          // An announce reply or a refusal lets the next announce go; offers to us are ignored.
          const text = data.toString('latin1')
          if (text.includes('"failure reason"')) failures++
          else if (!text.includes('"interval"')) return
          answered++
          if (running) s.send(nextAnnounce(peerId, turn++))
        })
        return {
          s,
          peerId,
          start: () => {
            for (let i = 0; i < IN_FLIGHT; i++) s.send(nextAnnounce(peerId, turn++))
          },
        }
      }),
    )
    const t0 = Date.now()
    attackers.forEach(a => a.start())
    await sleep(floodMs / 2)
    const during = await exchange(ctx, t.port).then(
      ms => `${Math.round(ms)} ms`,
      (e: Error) => `failed (${e.message.slice(0, 60)})`,
    )
    await sleep(Math.max(0, floodMs - (Date.now() - t0)))
    running = false
    await sleep(500)
    peak = Math.max(peak, t.rss())
    clearInterval(sampler)
    const after = await exchange(ctx, t.port).then(
      ms => `${Math.round(ms)} ms`,
      (e: Error) => `failed (${e.message.slice(0, 60)})`,
    )
    const offerLimit = (await t.metric('tracker_refusals_total', {reason: 'offer_limit'})) ?? 0
    const refusals = await t.byReason('tracker_refusals_total')
    const grew = peak - rss0
    return {
      held: grew < OFFER_RSS_BOUND && offerLimit > 0 && during.endsWith(' ms') && after.endsWith(' ms'),
      evidence:
        `RSS ${mib(rss0)}->${mib(peak)} MiB (bound +${mib(OFFER_RSS_BOUND)}); ${answered} announces of 10 offers (${offerCounter} offers) answered in ${floodMs / 1000} s, ` +
        `${failures} refused, ${offersSeen} messages to the other peers; offer_limit refusals ${offerLimit}; refusals: ${refusals}; legit offer/answer during ${during}, after ${after}`,
    }
  },
}

export const OFFER_ATTACKS: Attack[] = [pendingOffers]
