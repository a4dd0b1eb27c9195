/** `npm run fuzz [-- --count N]`: >= 1M random and mutated inputs per parser and per live server. */
import {parseArgs} from 'node:util'
import {formatFuzz, fuzzHttpServer, fuzzParsers, fuzzUdpServer, fuzzWsServer, type FuzzResult} from './fuzz.js'

const {values} = parseArgs({options: {count: {type: 'string', default: '1000000'}, seed: {type: 'string', default: '1'}}})
const count = Number(values.count)
const seed = Number(values.seed)
const port = 24_000 + (process.pid % 2000) * 3
const results: FuzzResult[] = []
const log = (r: FuzzResult) =>
  process.stderr.write(`${r.target}: ${r.inputs.toLocaleString('en-US')} inputs, ${r.crashes} crashes, ${r.seconds.toFixed(1)} s\n`)
for (const r of fuzzParsers(count, seed)) {
  log(r)
  results.push(r)
}
for (const [fuzz, p] of [
  [fuzzUdpServer, port],
  [fuzzHttpServer, port + 1],
  [fuzzWsServer, port + 2],
] as const) {
  const r = await fuzz(count, p, seed)
  log(r)
  results.push(r)
}
process.stdout.write(formatFuzz(results))
const bad = results.filter(r => r.crashes > 0 || (r.errorOutput ?? '') !== '')
for (const r of bad) process.stdout.write(`\n${r.target}: ${r.firstCrash ?? ''}${r.errorOutput ? `\nserver output:\n${r.errorOutput}` : ''}\n`)
process.exit(bad.length > 0 ? 1 : 0)
