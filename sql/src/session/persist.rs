//! What a front end needs to save a session and build it again later
//! (`weir serve`'s catalog, docs/serve.md): the views and the settings as
//! statements and values, and a way to put settings back. Tables are read
//! from [`Session::catalog`].

use super::Session;
use crate::error::Result;
use crate::settings::Settings;

impl Session {
    /// The views, by name, each with the `CREATE VIEW` that declares it as
    /// the session keeps it (`ALTER VIEW` rewrites it).
    pub fn view_declarations(&self) -> Vec<(String, String)> {
        self.views
            .names()
            .filter_map(|n| Some((n.clone(), self.views.get(n)?.ddl.clone())))
            .collect()
    }

    /// The settings that differ from their defaults, as `SET` gave them:
    /// what `SET` statements would need to give again.
    pub fn changed_settings(&self) -> Vec<(String, String)> {
        let defaults = Settings::default().all();
        self.settings
            .all()
            .into_iter()
            .filter(|kv| !defaults.contains(kv))
            .collect()
    }

    /// Makes `settings` the session's only changed settings, as if every
    /// setting were `RESET` and each of these `SET` again.
    pub fn replace_settings(&mut self, settings: &[(String, String)]) -> Result<()> {
        let mut replaced = Settings::default();
        for (key, value) in settings {
            replaced.set(key, value)?;
        }
        self.settings = replaced;
        crate::time_zone::register(&self.ctx, &self.settings.local_zone());
        Ok(())
    }
}
