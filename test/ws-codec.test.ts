/** WebTorrent messages: the scanner against JSON.parse, binary strings, robustness. */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import * as ws from '../src/protocol/ws/index.js'

const binary = fc.uint8Array({minLength: 20, maxLength: 20}).map(b => Buffer.from(b).toString('latin1'))
const sdpText = fc.string({unit: 'binary', maxLength: 200})

test('announces with offers and answers round-trip: every byte value in binary strings, any SDP text', () => {
  fc.assert(
    fc.property(
      binary,
      binary,
      fc.option(fc.nat(1e12)),
      fc.constantFrom(undefined, 'started', 'stopped', 'completed', 'update'),
      fc.array(fc.tuple(binary, sdpText), {maxLength: 5}),
      fc.option(fc.tuple(binary, binary, sdpText)),
      fc.dictionary(
        fc.string({maxLength: 8}).filter(k => !['action', 'info_hash', 'peer_id', 'left', 'event', 'offers', 'answer', 'to_peer_id', 'offer_id'].includes(k)),
        fc.jsonValue({maxDepth: 3}),
      ),
      (infoHash, peerId, left, event, offers, answer, extra) => {
        const msg: Record<string, unknown> = {
          ...extra,
          action: 'announce',
          info_hash: infoHash,
          peer_id: peerId,
          left,
          event,
          offers: offers.map(([id, s]) => ({offer_id: id, offer: {type: 'offer', sdp: s}})),
        }
        if (answer) Object.assign(msg, {to_peer_id: answer[0], offer_id: answer[1], answer: {type: 'answer', sdp: answer[2]}})
        const bytes = Buffer.from(JSON.stringify(msg))
        const r = ws.parseWsMessage(bytes, 5, 10)
        assert.equal(r.action, 'announce')
        if (r.action !== 'announce') return
        assert.equal(r.infoHash, infoHash)
        assert.equal(r.peerId, peerId)
        assert.equal(r.left, left ?? -1)
        assert.equal(r.offers.length, offers.length)
        r.offers.forEach((o, i) => {
          assert.equal(o.offerId, offers[i][0])
          // The raw bytes of the offer object are valid JSON equal to what was sent.
          assert.deepEqual(JSON.parse(bytes.toString('utf8', o.start, o.end)), {type: 'offer', sdp: offers[i][1]})
          const relayed = JSON.parse(ws.writeRelay(new ws.MessageWriter(), 'offer', infoHash, peerId, o.offerId, bytes, o.start, o.end).toString())
          assert.deepEqual(relayed, {
            action: 'announce',
            info_hash: infoHash,
            peer_id: peerId,
            offer_id: offers[i][0],
            offer: {type: 'offer', sdp: offers[i][1]},
          })
        })
        if (answer) {
          assert.equal(r.toPeerId, answer[0])
          assert.equal(r.offerId, answer[1])
          assert.deepEqual(JSON.parse(bytes.toString('utf8', r.answerStart, r.answerEnd)), {type: 'answer', sdp: answer[2]})
          const relayed = JSON.parse(ws.writeRelay(new ws.MessageWriter(), 'answer', infoHash, peerId, answer[1], bytes, r.answerStart, r.answerEnd).toString())
          assert.deepEqual(relayed, {action: 'announce', info_hash: infoHash, peer_id: peerId, offer_id: answer[1], answer: {type: 'answer', sdp: answer[2]}})
        } else {
          assert.equal(r.answerStart, -1)
        }
      },
    ),
  )
})

test('outgoing messages are valid JSON for every binary string', () => {
  fc.assert(
    fc.property(binary, fc.nat(), fc.nat(), binary, (ih, c, i, other) => {
      assert.deepEqual(JSON.parse(ws.writeAnnounceResponse(new ws.MessageWriter(), ih, c, i, 120).toString()), {
        action: 'announce',
        interval: 120,
        info_hash: ih,
        complete: c,
        incomplete: i,
      })
      const s = JSON.parse(
        ws.scrapeResponse([
          {infoHash: ih, complete: c, incomplete: i, downloaded: 1},
          {infoHash: other, complete: 0, incomplete: 0, downloaded: 0},
        ]),
      )
      assert.deepEqual(s.files[ih], {complete: c, incomplete: i, downloaded: 1})
      assert.deepEqual(JSON.parse(ws.failureMessage('x "y"', 'announce', ih)), {'failure reason': 'x "y"', action: 'announce', info_hash: ih})
    }),
  )
})

test('random and mutated input never throws anything but a MessageError', () => {
  const base = JSON.stringify({
    action: 'announce',
    info_hash: 'a'.repeat(20),
    peer_id: 'b'.repeat(20),
    offers: [{offer_id: 'c'.repeat(20), offer: {type: 'offer', sdp: 'v=0'}}],
  })
  fc.assert(
    fc.property(fc.string({maxLength: 300}), fc.nat(base.length), fc.nat(base.length), fc.string({maxLength: 5}), (noise, at, cut, insert) => {
      for (const text of [noise, base.slice(0, at) + insert + base.slice(at), base.slice(0, cut), '['.repeat(at) + ']'.repeat(at)]) {
        try {
          ws.parseWsMessage(Buffer.from(text), 10, 10)
        } catch (error) {
          assert.ok(error instanceof ws.MessageError, `${String(error)} for ${JSON.stringify(text)}`)
        }
      }
    }),
    {numRuns: 3000},
  )
})

test('the scanner accepts exactly what JSON.parse accepts, for object-shaped text', () => {
  const samples = [
    '{"action":"scrape","info_hash":"aaaaaaaaaaaaaaaaaaaa"}',
    '{"action":"scrape" , "x":[1,2.5e3,-0,true,null,{"y":"\\u00ff"}]}',
    '{"action":"scrape","x":01}',
    '{"action":"scrape","x":1.}',
    '{"action":"scrape","x":"\\x"}',
    '{"action":"scrape",}',
    '{"action":"scrape","x":tru}',
    '{"action":"scrape"} x',
    ' {"action":"scrape"} ',
    '{"action":"scrape","x":"a\nb"}',
    // Binary strings are read in one pass: escapes, control characters and the end still checked.
    '{"action":"scrape","info_hash":"aaaaaaaaaaaaaaaaaaa\\u00ff"}',
    '{"action":"scrape","info_hash":"aaaaaaaaaaaaaaaaaa\\x"}',
    '{"action":"scrape","info_hash":"aaaaaaaaaaaaaaaaaaa\\u00g0"}',
    '{"action":"scrape","info_hash":"aaaaaaaaaaaaaaaaaaa\tb"}',
    '{"action":"scrape","info_hash":"aaaaaaaaaaaaaaaaaaa\\"}',
    '{"action":"scrape","info_hash":["aaaaaaaaaaaaaaaaaaa\\"]}',
    '{"action":"scrape","info_hash":["aaaaaaaaaaaaaaaaaaa\\"", "bbbbbbbbbbbbbbbbbbbb"]}',
  ]
  for (const text of samples) {
    let json = true
    try {
      JSON.parse(text)
    } catch {
      json = false
    }
    let ours = true
    try {
      ws.parseWsMessage(Buffer.from(text), 10, 10)
    } catch {
      ours = false
    }
    assert.equal(ours, json, text)
  }
})

test('SDP text is delimited, not checked: it is relayed as it came (see the protocol notes)', () => {
  const ih = 'i'.repeat(20)
  const pid = 'p'.repeat(20)
  const head = `{"action":"announce","info_hash":"${ih}","peer_id":"${pid}","offers":[{"offer_id":"${'o'.repeat(20)}","offer":{"type":"offer","sdp":`
  // Escaped quotes and backslashes before the closing quote: the end is found where JSON puts it.
  for (const sdp of ['"v=0\\\\"', '"a\\"b\\\\\\"c"', '""']) {
    const text = `${head}${sdp}}}]}`
    const r = ws.parseWsMessage(Buffer.from(text), 10, 10)
    assert.ok(r.action === 'announce')
    assert.deepEqual(JSON.parse(text.slice(r.offers[0].start, r.offers[0].end)), {type: 'offer', sdp: JSON.parse(sdp)})
  }
  // A raw control character inside the SDP is passed on (JSON.parse would refuse it); an
  // unterminated SDP string is still refused.
  const raw = ws.parseWsMessage(Buffer.from(`${head}"v=0\u0001"}}]}`), 10, 10)
  assert.ok(raw.action === 'announce' && raw.offers.length === 1)
  assert.throws(() => ws.parseWsMessage(Buffer.from(`${head}"v=0\\"}}]}`), 10, 10), ws.MessageError)
})
