export { tf, initBackend } from './backend.ts';
export { gather, oneHot, matMul, linear } from './ops.ts';
