/**
 * `tracker loadtest http`: drives any HTTP tracker (BEP 3/23 announces, BEP 48 scrapes) with the
 * simulated swarm of model.ts from `workers` threads over undici connection pools.
 */
import type {LoadtestHttpConfig} from '../src/config/index.js'
import type {LoadReport} from './report.js'
import {runLoadThreads, type LoadtestOptions} from './threads.js'

export function runHttpLoadtest(config: LoadtestHttpConfig, options: LoadtestOptions = {}): Promise<LoadReport> {
  return runLoadThreads({protocol: 'http', workerUrl: new URL('./http-worker.js', import.meta.url), config, types: ['announce', 'scrape']}, options)
}
