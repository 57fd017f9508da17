export { tf, initBackend, parseBackendName, backendNames, BackendError, type BackendName } from './backend.ts';
export { gather, oneHot, matMul, linear } from './ops.ts';
