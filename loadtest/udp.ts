/**
 * `tracker loadtest udp`: drives any BEP 15 tracker with the simulated swarm of model.ts from
 * `workers` threads, prints a progress line each second and a summary at the end.
 */
import type {LoadtestUdpConfig} from '../src/config/index.js'
import type {LoadReport} from './report.js'
import {runLoadThreads, type LoadtestOptions} from './threads.js'

export function runUdpLoadtest(config: LoadtestUdpConfig, options: LoadtestOptions = {}): Promise<LoadReport> {
  return runLoadThreads({protocol: 'udp', workerUrl: new URL('./udp-worker.js', import.meta.url), config, types: ['connect', 'announce', 'scrape']}, options)
}
