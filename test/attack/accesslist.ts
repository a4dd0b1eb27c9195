/**
 * Class 7: access-list reloads. In allow mode, the list is replaced (by rename) with 1,000,000
 * lines and SIGUSR1 sent, then 50 ms later replaced with 1 line and SIGUSR1 sent again. The last
 * signal must win (1 entry in force; a hash only in the big list refused), and a UDP client
 * announcing all along must never wait more than 100 ms between replies.
 */
import {randomBytes} from 'node:crypto'
import {renameSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {UdpClient} from '../harness.js'
import {sleep, waitFor} from './net.js'
import type {Attack} from './suite.js'

const BIG = 1_000_000
const MAX_GAP_MS = 100

const reloadRace: Attack = {
  name: '7.accesslist-reload',
  server: 'udp',
  workers: 'both',
  budgetS: 90,
  async run(ctx) {
    const listPath = join(ctx.dir, 'access-list.txt')
    const legitHash = randomBytes(20)
    const bigOnly = randomBytes(20)
    writeFileSync(listPath, `${legitHash.toString('hex')}\n`)
    const t = await ctx.tracker({protocol: 'udp', config: {access_list: {mode: 'allow', path: listPath}}})
    // Both lists are written beside the list in force, then renamed over it.
    const bigPath = join(ctx.dir, 'big.txt')
    const hashes = randomBytes(20 * BIG)
    hashes.set(legitHash, 0)
    hashes.set(bigOnly, 20)
    const text = Buffer.allocUnsafe(41 * BIG)
    for (let i = 0; i < BIG; i++) {
      text.write(hashes.toString('hex', 20 * i, 20 * i + 20), 41 * i, 'latin1')
      text[41 * i + 40] = 0x0a
    }
    writeFileSync(bigPath, text)
    const smallPath = join(ctx.dir, 'small.txt')
    writeFileSync(smallPath, `${legitHash.toString('hex')}\n`)

    const c = ctx.own(await UdpClient.open(4, t.port))
    await c.connect()
    let running = true
    let last = performance.now()
    let maxGap = 0
    let replies = 0
    let lost = 0
    const loop = (async () => {
      while (running) {
        try {
          const r = await c.request(c.announceBytes({infoHash: legitHash, peerId: randomBytes(20), port: 6881}), 1000)
          if (r.action === 1) replies++
          const now = performance.now()
          maxGap = Math.max(maxGap, now - last)
          last = now
        } catch {
          lost++
        }
        await sleep(2)
      }
    })()
    await sleep(500)
    const t0 = Date.now()
    renameSync(bigPath, listPath)
    process.kill(t.pid, 'SIGUSR1')
    await sleep(50)
    renameSync(smallPath, listPath)
    process.kill(t.pid, 'SIGUSR1')
    const reloads = async () => (await t.metric('tracker_access_list_reloads_total')) ?? 0
    const finished = await waitFor(async () => (await reloads()) >= 2, 30_000, 200)
    const doneIn = Date.now() - t0
    // A late finisher would show now.
    await sleep(1000)
    running = false
    await loop
    maxGap = Math.max(maxGap, performance.now() - last)
    const entries = await t.metric('tracker_access_list_entries')
    // From several source ports, so that every worker is asked.
    const askers = await Promise.all(Array.from({length: 8}, () => UdpClient.open(4, t.port).then(x => ctx.own(x))))
    let refused = 0
    let allowed = 0
    for (const a of askers) {
      await a.connect()
      const r = await a.request(a.announceBytes({infoHash: bigOnly, peerId: randomBytes(20), port: 6882}), 1000).catch(() => null)
      if (r?.action === 3) refused++
      else if (r?.action === 1) allowed++
    }
    const ok = await c.announce({infoHash: legitHash, peerId: randomBytes(20), port: 6883}).then(
      () => true,
      () => false,
    )
    return {
      held: finished && entries === 1 && refused === askers.length && ok && maxGap <= MAX_GAP_MS,
      evidence:
        `${finished ? `both reloads done in ${(doneIn / 1000).toFixed(1)} s` : 'reloads not done within 30 s'}; entries in force ${entries ?? '?'} (want 1); ` +
        `big-list-only hash refused by ${refused}/${askers.length} sockets${allowed ? `, allowed by ${allowed}` : ''}; listed hash ${ok ? 'served' : 'NOT served'}; ` +
        `max gap between replies ${Math.round(maxGap)} ms (bound ${MAX_GAP_MS}), ${replies} replies, ${lost} lost`,
    }
  },
}

export const ACCESS_LIST_ATTACKS: Attack[] = [reloadRace]
