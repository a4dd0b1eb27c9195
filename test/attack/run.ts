/**
 * `npm run attack [-- --only SUBSTRING ... --workers N --quick --json]`: the attacks of issue 13
 * against live trackers on loopback, each a fresh child process. Prints
 * `attack | server | held | evidence` and exits 1 when any attack was not held.
 *
 * --workers N: worker processes per tracker (1 by default); attacks that need several run with at
 * least 2, and those where the count matters run with 1 and with max(N, 2).
 */
import {resolve} from 'node:path'
import {parseArgs} from 'node:util'
import {ATTACKS} from './index.js'
import {expand, formatTable, openContexts, runCase, serverLabel, type Result} from './suite.js'

const {values} = parseArgs({
  options: {
    only: {type: 'string', multiple: true, default: []},
    workers: {type: 'string', default: '1'},
    quick: {type: 'boolean', default: false},
    json: {type: 'boolean', default: false},
    list: {type: 'boolean', default: false},
    bin: {type: 'string'},
    help: {type: 'boolean', default: false},
  },
})
if (values.help) {
  process.stdout.write(`npm run attack -- [--only SUBSTRING]... [--workers N] [--quick] [--json] [--list] [--bin PATH]

  --only SUBSTRING  run the attacks whose "name server" contains it (repeatable), e.g. --only 4. --only "ws node-io"
  --workers N       worker processes per tracker (1); attacks that need several use at least 2, and those where
                    the count matters run with 1 and with max(N, 2)
  --quick           shorter floods and fewer rounds
  --json            results as JSON on stdout
  --list            the cases that would run, and which are fast (in npm test)
  --bin PATH        the tracker CLI to attack (bin/run.js of another build; this checkout's by default)
`)
  process.exit(0)
}
const workers = Number(values.workers)
if (!Number.isInteger(workers) || workers < 1 || workers > 16) {
  process.stderr.write(`--workers ${values.workers}: expected a whole number from 1 to 16\n`)
  process.exit(2)
}
const cases = expand(ATTACKS, workers).filter(
  c => values.only.length === 0 || values.only.some(s => `${c.attack.name} ${serverLabel({server: c.attack.server, workers: c.workers})}`.includes(s)),
)
if (values.list) {
  for (const c of cases)
    process.stdout.write(`${c.attack.name}\t${serverLabel({server: c.attack.server, workers: c.workers})}${c.attack.fast ? '\tfast' : ''}\n`)
  process.exit(0)
}
if (cases.length === 0) {
  process.stderr.write(`no attack matches ${values.only.map(s => `--only ${s}`).join(' ')}; --list shows them\n`)
  process.exit(2)
}
const log = (line: string) => process.stderr.write(line + '\n')
// Interrupted: stop the trackers and remove the temp dirs of the case under way.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`)
    void Promise.all([...openContexts].map(c => c.cleanup())).finally(() => process.exit(130))
  })
}
const results: Result[] = []
const started = Date.now()
for (const [i, c] of cases.entries()) {
  const label = `${c.attack.name} | ${serverLabel({server: c.attack.server, workers: c.workers})}`
  log(`[${i + 1}/${cases.length}] ${label} ...`)
  const r = await runCase(c, {quick: values.quick, bin: values.bin && resolve(values.bin), log: line => log(`    ${line}`)})
  results.push(r)
  log(`[${i + 1}/${cases.length}] ${label}: ${r.held ? 'held' : 'NOT HELD'} (${r.seconds.toFixed(1)} s) ${r.evidence}`)
}
const seconds = (Date.now() - started) / 1000
const notHeld = results.filter(r => !r.held).length
if (values.json) process.stdout.write(JSON.stringify({seconds, notHeld, results}, null, 2) + '\n')
else process.stdout.write(formatTable(results) + `\n${results.length - notHeld} of ${results.length} held, ${notHeld} not held, in ${seconds.toFixed(0)} s\n`)
process.exit(notHeld > 0 ? 1 : 0)
