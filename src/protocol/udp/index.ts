export * from './codec.js'
export {ConnectionIdValidator} from './connection-id.js'
export {SipHash24} from './siphash.js'
