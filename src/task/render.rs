//! Rendering one sample of a problem: the user message (before any chat
//! template) and what the grader expects for that sample.

use serde::{Deserialize, Serialize};

use super::aime::PROMPT_INCLUDED;
use super::choices::correct_letter;
use super::error::RenderError;
use super::gpqa::{N_ROWS, ROW};
use super::problem::{Expected, Problem, Reference};
use super::spec::{PromptSpec, Task};

/// Which sample is being rendered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleCtx {
    /// The repeat: selects the multiple-choice option order (simple-evals'
    /// `n_repeats`). Samples that share a repeat share the prompt, so their
    /// answers can be majority-voted. Other tasks render the same text for
    /// every repeat.
    pub repeat: u32,
}

/// A rendered sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendered {
    /// The user turn, to be wrapped by the model's chat template.
    pub user_message: String,
    pub expected: Expected,
}

impl Task {
    /// Renders `problem` for the sample `ctx`.
    ///
    /// Errors when the problem's reference does not fit the task's prompt
    /// (e.g. a code problem under a math task) or multiple-choice metadata
    /// (`row`, `n_rows`) is missing.
    pub fn render(&self, problem: &Problem, ctx: SampleCtx) -> Result<Rendered, RenderError> {
        let template_err = |source| RenderError::Template {
            problem: problem.id.clone(),
            source,
        };
        match (&self.prompt, &problem.reference) {
            (PromptSpec::Math { template }, Reference::Math { answer }) => {
                let included =
                    problem.metadata.get(PROMPT_INCLUDED) == Some(&serde_json::Value::Bool(true));
                let user_message = if included {
                    problem.question.clone()
                } else {
                    template
                        .fill(&[("problem", &problem.question)])
                        .map_err(template_err)?
                };
                Ok(Rendered {
                    user_message,
                    expected: Expected::Math {
                        answer: answer.clone(),
                    },
                })
            }
            (
                PromptSpec::MultipleChoice { template, choices },
                Reference::MultipleChoice { correct, incorrect },
            ) => {
                let meta = |field: &'static str| {
                    problem
                        .metadata
                        .get(field)
                        .and_then(serde_json::Value::as_u64)
                        .map(|v| v as usize)
                        .ok_or(RenderError::Metadata {
                            problem: problem.id.clone(),
                            field,
                        })
                };
                let (row, n_rows) = (meta(ROW)?, meta(N_ROWS)?);
                if incorrect.len() != 3 || row >= n_rows {
                    return Err(RenderError::Metadata {
                        problem: problem.id.clone(),
                        field: if row >= n_rows { ROW } else { "incorrect" },
                    });
                }
                let options = [correct, &incorrect[0], &incorrect[1], &incorrect[2]];
                let perm = choices.permutation(ctx.repeat, row, n_rows);
                let user_message = template
                    .fill(&[
                        ("question", &problem.question),
                        ("A", options[perm[0]]),
                        ("B", options[perm[1]]),
                        ("C", options[perm[2]]),
                        ("D", options[perm[3]]),
                    ])
                    .map_err(template_err)?;
                Ok(Rendered {
                    user_message,
                    expected: Expected::Letter {
                        letter: correct_letter(&perm),
                    },
                })
            }
            (
                PromptSpec::Code {
                    with_starter,
                    stdin,
                },
                Reference::Code {
                    tests,
                    fn_name,
                    starter_code,
                    ..
                },
            ) => {
                // LiveCodeBench branches on `if question.starter_code:`.
                let user_message = if starter_code.is_empty() {
                    stdin.fill(&[("question", &problem.question)])
                } else {
                    with_starter.fill(&[
                        ("question", &problem.question),
                        ("starter_code", starter_code),
                    ])
                }
                .map_err(template_err)?;
                Ok(Rendered {
                    user_message,
                    expected: Expected::Code {
                        tests: tests.clone(),
                        fn_name: fn_name.clone(),
                    },
                })
            }
            (prompt, reference) => Err(RenderError::WrongKind {
                task: self.name.clone(),
                problem: problem.id.clone(),
                expected: match prompt {
                    PromptSpec::Math { .. } => "math",
                    PromptSpec::MultipleChoice { .. } => "multiple-choice",
                    PromptSpec::Code { .. } => "code",
                },
                found: match reference {
                    Reference::Math { .. } => "math",
                    Reference::MultipleChoice { .. } => "multiple-choice",
                    Reference::Code { .. } => "code",
                },
            }),
        }
    }
}
