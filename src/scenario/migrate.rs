//! The `migrate` step of a scenario: the next version of the workflow read from beside the
//! scenario file, put in force in place of the workflow's own file, and the current instance
//! migrated to it as a process owner would.

use super::MigrateStep;
use super::run::Run;
use crate::definition::model::PROCESS_OWNER_ROLE;
use crate::engine::{Engine, MigrationRequest, Moved};
use crate::i18n::Lang;
use crate::machine::Actor;
use std::path::Path;

impl Run<'_> {
    /// Loads the next version of the workflow from the step's file and migrates the current
    /// instance to it as a process owner; with `blocked`, the migration must be blocked so.
    pub(super) async fn migrate(
        &mut self,
        engine: &Engine,
        step: &MigrateStep,
        blocked: Option<&str>,
    ) -> Result<(), String> {
        let id = self.current()?;
        let text = self.beside(&step.to)?;
        let running = engine
            .definition_of(self.workflow)
            .ok_or_else(|| format!("no workflow `{}` is loaded", self.workflow))?;
        let mut texts = match self.texts.take() {
            Some(texts) => texts,
            None => crate::catalog::Sources::read(self.paths).map_err(|e| e.to_string())?,
        };
        let Some(file) = texts.workflows.iter_mut().find(|f| f.path == running.file) else {
            return Err(format!(
                "the workflow's file {} is not among the files read",
                running.file.display()
            ));
        };
        file.text = Ok(text);
        let reloaded = engine
            .reload_from(texts.clone())
            .await
            .map_err(|e| e.to_string())?;
        self.texts = Some(texts);
        if let Some(error) = reloaded.report.diagnostics.iter().find(|d| d.is_error()) {
            return Err(format!(
                "the new version in `{}` does not load: {}:{}: {} ({}: {})",
                step.to,
                error.file.display(),
                error.span.line,
                error.message,
                error.code,
                error.hint
            ));
        }
        let actor = step.actor.as_deref().unwrap_or(PROCESS_OWNER_ROLE);
        let mut request = MigrationRequest::new(
            self.workflow,
            crate::engine::CURRENT,
            Actor::new(actor, [PROCESS_OWNER_ROLE]),
        );
        request.only = vec![id];
        request.comment = step.comment.clone();
        request.mapping = crate::machine::Mapping {
            states: step.map.clone(),
            set: step.set.clone(),
            drop_signatures: step.drop_signatures,
            timers: step.timers,
        };
        let mut moved = Vec::new();
        engine
            .migrate(request, |m| moved.push(m))
            .await
            .map_err(|e| format!("`migrate` failed: {e} ({})", e.code()))?;
        match (moved.pop(), blocked) {
            (Some(Moved::Migrated { .. }), None) => Ok(()),
            (Some(Moved::Migrated { .. }), Some(code)) => Err(format!(
                "the instance was migrated, but the scenario expects the migration blocked with `{code}`"
            )),
            (Some(Moved::Blocked { plan }), Some(code))
                if plan.blockers.iter().any(|b| b.code() == code) =>
            {
                Ok(())
            }
            (Some(Moved::Blocked { plan }), _) => {
                let old = engine
                    .definition_blocking(&plan.from_version)
                    .await
                    .map_err(|e| e.to_string())?;
                let reasons: Vec<String> = plan
                    .blockers
                    .iter()
                    .map(|b| {
                        let text =
                            crate::i18n::blocker_text(Lang::En, &old.workflow, &old.workflow, b);
                        format!("{text} ({})", b.code())
                    })
                    .collect();
                Err(format!("the migration is blocked: {}", reasons.join("; ")))
            }
            (None, _) => Err(
                "nothing was migrated: the instance has finished, or already runs on this version"
                    .into(),
            ),
        }
    }

    /// The text of a file beside the scenario file: a relative path that stays in its folder.
    fn beside(&self, name: &str) -> Result<String, String> {
        let relative = Path::new(name);
        if name.is_empty()
            || !relative
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        {
            return Err(format!(
                "`migrate: to: {name}` must name a file in the scenario's folder or below it (no `..`, no absolute path)"
            ));
        }
        let path = self.folder.join(relative);
        std::fs::read_to_string(&path)
            .map_err(|e| format!("`migrate: to`: cannot read {}: {e}", path.display()))
    }
}
