//! DMS retrofitting (`docs/method.md` §4): train eviction decisions
//! into a frozen base with burn autodiff, the base with dense attention as
//! its own teacher.
//!
//! | file | owns |
//! |---|---|
//! | `config.rs` | hyperparameters, variant, the CR schedule |
//! | `frozen.rs` | the base weights as graph constants |
//! | `decisions.rs` | the trainable decision parameters (a burn `Module`) |
//! | `attention.rs` | causal attention with the DMS key terms |
//! | `forward.rs` | teacher / relaxed / hard forward of the decoder |
//! | `noise.rs` | seeded logistic noise per step |
//! | `loss.rs` | KL(student ‖ teacher) + one-sided compression loss |
//! | `trainer.rs` | one optimisation step |
//! | `data.rs` | documents, packing, KL mask, order |
//! | `distill.rs` | self-distillation: the base answers task prompts |
//! | `run.rs` | the loop: log lines, checkpoints |
//! | `checkpoint.rs` | loadable DMS model / adapter directories |
//! | `eval.rs` | held-out KL and achieved compression |
//! | `command.rs` | the `train-dms` / `eval-dms` commands |

pub mod attention;
pub mod checkpoint;
pub mod command;
pub mod config;
pub mod data;
pub mod decisions;
pub mod distill;
pub mod error;
pub mod eval;
pub mod forward;
pub mod frozen;
pub mod loss;
pub mod noise;
pub mod run;
pub mod trainer;

pub use config::{DmsTrainConfig, TrainConfig, Variant};
pub use decisions::DecisionParams;
pub use error::TrainError;
pub use eval::{EvalReport, evaluate};
pub use forward::{Mode, Output, forward};
pub use frozen::FrozenModel;
pub use trainer::{StepLog, Trainer};
