//! Prompts: chat templates (rendered as Hugging Face transformers renders
//! them) and the task prompt templates built on top.

pub mod chat;
pub mod template;

pub use chat::{ChatError, ChatTemplate, Message, TemplateVars};
