//! Model tests: GGUF and tokenizer loading, logits against the HF reference, CPU kernels, DMS, device parity, train-dms.

mod chat_template;
mod chunked_prefill;
mod cpu_kernels;
mod cube_ops;
mod device_parity;
mod dms;
mod gguf;
mod gguf_builder;
mod kv_dtype;
mod kv_memory;
mod parity;
mod tokenizer;
mod train_dms;
