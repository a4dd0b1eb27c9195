/**
 * How long a big access-list reload keeps a UDP tracker from answering: a client announces back
 * to back while the tracker re-reads a list of `--lines` hashes (SIGUSR1); prints the longest
 * time between two replies, how long the reload took and the memory of the tracker's processes.
 *
 *   npx tsc -p . && node dist/loadtest/bench/reload-gap.js --lines 1000000 --workers 1 --rounds 3
 */
import {randomBytes} from 'node:crypto'
import {mkdtempSync, rmSync, writeFileSync, openSync, writeSync, closeSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {parseArgs} from 'node:util'
import {setTimeout as sleep} from 'node:timers/promises'
import {readStatus} from '../../src/process/status.js'
import {startGapProbe} from './gap-probe.js'
import {descendants, rssBytes, startProcess, stopProcess} from './proc.js'

const {values} = parseArgs({
  options: {
    lines: {type: 'string', default: '1000000'},
    workers: {type: 'string', default: '1'},
    rounds: {type: 'string', default: '3'},
    port: {type: 'string', default: '0'},
    /** Print what the tracker wrote (its warnings and errors). */
    verbose: {type: 'boolean', default: false},
  },
})
const lines = Number(values.lines)
const workers = Number(values.workers)
const dir = mkdtempSync(join(tmpdir(), 'reload-gap-'))
const list = join(dir, 'list.txt')
const probeHash = randomBytes(20)

/** A list of `n` random hashes, the probe's first; written in pieces (1M lines are 41 MB). */
function writeList(path: string, n: number): void {
  const fd = openSync(path, 'w')
  writeSync(fd, probeHash.toString('hex') + '\n')
  for (let done = 1; done < n; ) {
    const k = Math.min(50_000, n - done)
    const chunk = randomBytes(20 * k)
    let text = ''
    for (let i = 0; i < k; i++) text += chunk.toString('hex', i * 20, i * 20 + 20) + '\n'
    writeSync(fd, text)
    done += k
  }
  closeSync(fd)
}

const MiB = (b: number): string => (b / 1048576).toFixed(0)

async function main(): Promise<void> {
  writeList(list, lines)
  const port = Number(values.port) || 20_000 + Math.floor(Math.random() * 20_000)
  const pidFile = join(dir, 'tracker.pid')
  const cfg = join(dir, 'udp.toml')
  writeFileSync(
    cfg,
    `socket_workers = ${workers}
log_level = "warn"
pid_file = "${pidFile}"
[network]
address_ipv4 = "127.0.0.1:${port}"
use_ipv6 = false
[metrics]
run_prometheus_endpoint = false
[access_list]
mode = "allow"
path = "${list}"
`,
  )
  const bin = new URL('../../../bin/run.js', import.meta.url).pathname
  const t = await startProcess(process.execPath, [bin, 'serve', 'udp', '-c', cfg], () => readStatus(pidFile) !== undefined, {timeoutMs: 120_000})
  const pid = t.child.pid!
  process.stdout.write(
    `| workers | lines | reload ms | max gap ms (before the signal) | replies | resent | RSS before MiB (primary / workers) | RSS peak MiB |\n|---|---|---|---|---|---|---|---|\n`,
  )
  try {
    for (let round = 0; round < Number(values.rounds); round++) {
      const probe = await startGapProbe(port, probeHash)
      await sleep(300)
      probe.reset()
      const tree = (): number[] => [pid, ...descendants(pid)]
      const before = tree().map(rssBytes)
      const peaks = [...before]
      const sampler = setInterval(() => {
        tree().forEach((p, i) => (peaks[i] = Math.max(peaks[i] ?? 0, rssBytes(p))))
      }, 20)
      await sleep(1000)
      const quiet = probe.lap()
      const generation = readStatus(pidFile)!.generation
      const signalled = performance.now()
      t.child.kill('SIGUSR1')
      while ((readStatus(pidFile)?.generation ?? 0) <= generation) await sleep(10)
      const reloadMs = performance.now() - signalled
      await sleep(100)
      clearInterval(sampler)
      const r = probe.stop()
      const status = readStatus(pidFile)!
      if (!status.ok || status.entries !== lines) throw new Error(`reload did not put the list in force: ${JSON.stringify(status)}`)
      process.stdout.write(
        `| ${workers} | ${lines} | ${reloadMs.toFixed(0)} | ${r.maxGapMs.toFixed(1)} (${quiet.maxGapMs.toFixed(1)}) | ${r.replies} | ${r.resent} | ${before.map(MiB).join(' / ')} | ${peaks.map(MiB).join(' / ')} |\n`,
      )
    }
  } finally {
    await stopProcess(t.child)
    if (values.verbose) process.stderr.write(t.output())
    rmSync(dir, {recursive: true, force: true})
  }
}

await main()
