export { tf, initBackend } from './backend.ts';
export {
  gather,
  oneHot,
  matMul,
  linear,
  rotary,
  rmsNorm,
  attention,
  swiglu,
  layerNorm,
  geluTanh,
  labelLogProb,
  labelLogProbGrad,
  adamWUpdate,
  FUSED,
  fused,
  run as runFused,
} from './ops.ts';
