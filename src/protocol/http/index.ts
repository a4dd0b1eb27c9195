export * from './head.js'
export * from './query.js'
export * from './response.js'
export * from './client.js'
