/**
 * `tracker loadtest ws`: drives any WebTorrent tracker with simulated browser peers that announce
 * with offers and answer every offer they receive, from `workers` threads.
 */
import type {LoadtestWsConfig} from '../src/config/index.js'
import type {LoadReport} from './report.js'
import {runLoadThreads, type LoadtestOptions} from './threads.js'

export function runWsLoadtest(config: LoadtestWsConfig, options: LoadtestOptions = {}): Promise<LoadReport> {
  return runLoadThreads(
    {protocol: 'ws', workerUrl: new URL('./ws-worker.js', import.meta.url), config, types: ['announce', 'scrape', 'offer', 'answer']},
    options,
  )
}
