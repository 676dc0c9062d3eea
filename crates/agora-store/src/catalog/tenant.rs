//! The catalog as one commune's person or token sees it: its own communes' sites, devices,
//! series, tokens and people, and changes allowed only within its commune and, for a business
//! department, its domain. The API hands this view to every handler serving such a principal, so
//! that lists, lookups and queries are filtered in one place rather than route by route.
//!
//! Objects of no commune (a device not yet placed) belong to the Métropole: a commune's view
//! does not show them.

use std::sync::Arc;

use agora_model::permissions::{Action, Domain, Grant, Role};
use agora_model::{DeviceId, InseeCode, PropertyName, SeriesId, Timestamp, ValueKind};
use async_trait::async_trait;

use super::{
    AttributeScope, Attributes, Catalog, Commune, Device, DeviceFilter, LoginRefusal, NewPerson,
    NewReject, Person, Reject, Scope, SeriesInfo, Site, TokenInfo,
};
use crate::error::{Error, Result};

/// One principal's view of the catalog.
#[derive(Debug)]
pub struct TenantView {
    inner: Arc<dyn Catalog>,
    grant: Grant,
}

impl TenantView {
    /// The view of `grant` over `inner`.
    pub fn new(inner: Arc<dyn Catalog>, grant: Grant) -> Self {
        Self { inner, grant }
    }

    /// Whether a grant needs a view at all: the Métropole's administrators, operators and
    /// viewers see and (as their role allows) change everything.
    pub fn needed(grant: &Grant) -> bool {
        grant.commune().is_some() || grant.role() == Role::Department
    }

    fn own(&self) -> Option<&InseeCode> {
        self.grant.commune()
    }

    fn sees_commune(&self, c: Option<&InseeCode>) -> bool {
        self.grant.sees_all() || (c.is_some() && c == self.own())
    }

    fn sees_device(&self, d: &Device) -> bool {
        self.sees_commune(d.commune.as_ref())
    }

    fn sees_device_id(&self, id: &str) -> bool {
        self.grant.sees_all()
            || self
                .inner
                .device_commune(id)
                .is_some_and(|c| c.is_some() && c.as_ref() == self.own())
    }

    fn hidden(what: &'static str, id: impl ToString) -> Error {
        Error::NotFound { what, id: id.to_string() }
    }

    fn may(
        &self,
        action: Action,
        commune: Option<&InseeCode>,
        domain: Option<Domain>,
    ) -> Result<()> {
        if self.grant.may_on(action, commune, domain) {
            return Ok(());
        }
        let on = match (commune, domain) {
            (Some(c), Some(d)) => format!("{d} equipment of commune {c}"),
            (Some(c), None) => format!("commune {c}"),
            (None, _) => "the Métropole's own objects".to_owned(),
        };
        Err(Error::Forbidden(format!(
            "a {} of {}{} may not {action} {on}",
            self.grant.role(),
            self.grant.tenant_name(),
            self.grant.domain().map(|d| format!(" ({d})")).unwrap_or_default(),
        )))
    }

    /// A device it may change: visible, and of its domain for a department.
    fn changeable_device(&self, id: &DeviceId, action: Action) -> Result<Device> {
        let d = self.inner.device(id.as_str()).filter(|d| self.sees_device(d));
        let d = d.ok_or_else(|| Self::hidden("device", id))?;
        self.may(action, d.commune.as_ref(), Domain::of_kind(d.kind.as_str()))?;
        Ok(d)
    }

    fn grant_within(&self, g: &Grant) -> Result<()> {
        if self.grant.sees_all() {
            return Ok(());
        }
        if g.commune() != self.own() {
            return Err(Error::Forbidden(format!(
                "someone of {} gives roles in {} only, not in {}",
                self.grant.tenant_name(),
                self.grant.tenant_name(),
                g.tenant_name()
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl Catalog for TenantView {
    async fn upsert_commune(&self, c: Commune) -> Result<()> {
        self.may(Action::Modify, None, None)?;
        self.inner.upsert_commune(c).await
    }

    fn communes(&self) -> Vec<Commune> {
        let mut v = self.inner.communes();
        v.retain(|c| self.sees_commune(Some(&c.insee)));
        v
    }

    async fn upsert_site(&self, s: Site) -> Result<()> {
        if let Some(old) = self.inner.sites().into_iter().find(|o| o.id == s.id) {
            self.may(Action::Modify, Some(&old.commune), None)?;
        }
        self.may(Action::Modify, Some(&s.commune), None)?;
        self.inner.upsert_site(s).await
    }

    async fn insert_site(&self, s: Site) -> Result<bool> {
        self.may(Action::Modify, Some(&s.commune), None)?;
        self.inner.insert_site(s).await
    }

    fn sites(&self) -> Vec<Site> {
        let mut v = self.inner.sites();
        v.retain(|s| self.sees_commune(Some(&s.commune)));
        v
    }

    async fn upsert_device(&self, mut d: Device) -> Result<()> {
        if let Some(old) = self.inner.device(d.id.as_str()) {
            if !self.sees_device(&old) {
                return Err(Error::Conflict(format!(
                    "device {} exists and is not of {}",
                    d.id,
                    self.grant.tenant_name()
                )));
            }
            self.may(Action::Modify, old.commune.as_ref(), Domain::of_kind(old.kind.as_str()))?;
        }
        // A commune's new equipment is the commune's, and stands on its places only.
        if d.commune.is_none() {
            d.commune = self.own().cloned();
        }
        if let Some(site) = &d.site {
            let at = self.inner.sites().into_iter().find(|s| &s.id == site);
            match at {
                Some(s) if Some(&s.commune) == d.commune.as_ref() => {}
                Some(s) if !self.sees_commune(Some(&s.commune)) => {
                    return Err(Self::hidden("site", site));
                }
                Some(s) => {
                    return Err(Error::Invalid(format!(
                        "site {site} is in commune {}, not in the device's",
                        s.commune
                    )));
                }
                None => {}
            }
        }
        self.may(Action::Modify, d.commune.as_ref(), Domain::of_kind(d.kind.as_str()))?;
        self.inner.upsert_device(d).await
    }

    fn device(&self, id: &str) -> Option<Device> {
        self.inner.device(id).filter(|d| self.sees_device(d))
    }

    fn device_commune(&self, id: &str) -> Option<Option<InseeCode>> {
        self.inner.device_commune(id).filter(|c| self.sees_commune(c.as_ref()))
    }

    fn devices_version(&self) -> u64 {
        self.inner.devices_version()
    }

    fn devices(&self, f: &DeviceFilter) -> Vec<Device> {
        if self.grant.sees_all() {
            return self.inner.devices(f);
        }
        if f.commune.is_some() && f.commune.as_ref() != self.own() {
            return Vec::new();
        }
        let f = DeviceFilter { commune: self.own().cloned(), ..f.clone() };
        self.inner.devices(&f)
    }

    fn lookup_series(&self, keys: &[(&str, &str)]) -> Vec<Option<SeriesId>> {
        let mut v = self.inner.lookup_series(keys);
        if !self.grant.sees_all() {
            for (id, (device, _)) in v.iter_mut().zip(keys) {
                if id.is_some() && !self.sees_device_id(device) {
                    *id = None;
                }
            }
        }
        v
    }

    async fn create_series(
        &self,
        device: &DeviceId,
        property: &PropertyName,
        kind: ValueKind,
        unit: &str,
        source_unit: Option<&str>,
    ) -> Result<SeriesInfo> {
        self.changeable_device(device, Action::Ingest)?;
        self.inner.create_series(device, property, kind, unit, source_unit).await
    }

    fn series_info(&self, id: SeriesId) -> Option<SeriesInfo> {
        self.inner.series_info(id).filter(|s| self.sees_device_id(s.device.as_str()))
    }

    fn device_series(&self, device: &str) -> Vec<SeriesInfo> {
        if !self.sees_device_id(device) {
            return Vec::new();
        }
        self.inner.device_series(device)
    }

    fn all_series(&self) -> Vec<SeriesInfo> {
        let mut v = self.inner.all_series();
        if !self.grant.sees_all() {
            let seen: std::collections::HashSet<DeviceId> =
                self.devices(&DeviceFilter::default()).into_iter().map(|d| d.id).collect();
            v.retain(|s| seen.contains(&s.device));
        }
        v
    }

    fn touch(&self, seen: &[(DeviceId, Timestamp)]) {
        self.inner.touch(seen);
    }

    async fn persist(&self) -> Result<()> {
        self.inner.persist().await
    }

    async fn save_runtime_state(&self, name: &str, value: &str) -> Result<()> {
        self.inner.save_runtime_state(name, value).await
    }

    async fn runtime_state(&self, name: &str) -> Result<Option<String>> {
        self.inner.runtime_state(name).await
    }

    async fn create_token(
        &self,
        name: &str,
        scope: Scope,
        device: Option<DeviceId>,
    ) -> Result<(TokenInfo, String)> {
        self.create_token_granted(name, scope.grant(), device).await
    }

    async fn create_token_granted(
        &self,
        name: &str,
        grant: Grant,
        device: Option<DeviceId>,
    ) -> Result<(TokenInfo, String)> {
        self.grant_within(&grant)?;
        if let Some(d) = &device {
            self.changeable_device(d, Action::Ingest)?;
        }
        self.inner.create_token_granted(name, grant, device).await
    }

    async fn create_token_with_secret(
        &self,
        _name: &str,
        _scope: Scope,
        _secret: &str,
    ) -> Result<Option<TokenInfo>> {
        Err(Error::Forbidden("only the Métropole sets a token's secret".into()))
    }

    fn authenticate(&self, secret: &str) -> Option<TokenInfo> {
        self.inner.authenticate(secret)
    }

    async fn set_token_expiry(&self, id: &str, at: Option<Timestamp>) -> Result<TokenInfo> {
        self.tokens().iter().find(|t| t.id == id).ok_or_else(|| Self::hidden("token", id))?;
        self.inner.set_token_expiry(id, at).await
    }

    fn tokens(&self) -> Vec<TokenInfo> {
        let mut v = self.inner.tokens();
        v.retain(|t| self.sees_commune(t.grant.commune()) || self.grant.sees_all());
        v
    }

    async fn revoke_token(&self, id: &str) -> Result<()> {
        self.tokens().iter().find(|t| t.id == id).ok_or_else(|| Self::hidden("token", id))?;
        self.inner.revoke_token(id).await
    }

    async fn create_person(&self, p: NewPerson) -> Result<Person> {
        self.grant_within(&p.grant)?;
        self.inner.create_person(p).await
    }

    fn people(&self) -> Vec<Person> {
        let mut v = self.inner.people();
        v.retain(|p| self.grant.sees_all() || p.grant.commune() == self.own());
        v
    }

    fn person(&self, id: &str) -> Option<Person> {
        self.inner.person(id).filter(|p| self.grant.sees_all() || p.grant.commune() == self.own())
    }

    fn person_by_subject(&self, subject: &str) -> Option<Person> {
        self.inner
            .person_by_subject(subject)
            .filter(|p| self.grant.sees_all() || p.grant.commune() == self.own())
    }

    fn person_by_email(&self, email: &str) -> Option<Person> {
        self.inner
            .person_by_email(email)
            .filter(|p| self.grant.sees_all() || p.grant.commune() == self.own())
    }

    async fn update_person(
        &self,
        id: &str,
        name: Option<String>,
        grant: Option<Grant>,
        disabled: Option<bool>,
    ) -> Result<Person> {
        self.person(id).ok_or_else(|| Self::hidden("person", id))?;
        if let Some(g) = &grant {
            self.grant_within(g)?;
        }
        self.inner.update_person(id, name, grant, disabled).await
    }

    async fn set_password(&self, id: &str, password: &str) -> Result<()> {
        self.person(id).ok_or_else(|| Self::hidden("person", id))?;
        self.inner.set_password(id, password).await
    }

    async fn link_subject(&self, id: &str, subject: &str) -> Result<()> {
        self.person(id).ok_or_else(|| Self::hidden("person", id))?;
        self.inner.link_subject(id, subject).await
    }

    async fn delete_person(&self, id: &str) -> Result<()> {
        self.person(id).ok_or_else(|| Self::hidden("person", id))?;
        self.inner.delete_person(id).await
    }

    async fn password_login(
        &self,
        email: &str,
        password: &str,
        now: Timestamp,
    ) -> Result<std::result::Result<Person, LoginRefusal>> {
        self.inner.password_login(email, password, now).await
    }

    async fn set_attributes(
        &self,
        device: &DeviceId,
        scope: AttributeScope,
        values: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        self.changeable_device(device, Action::Command)?;
        self.inner.set_attributes(device, scope, values).await
    }

    async fn delete_attributes(
        &self,
        device: &DeviceId,
        scope: AttributeScope,
        keys: &[String],
    ) -> Result<()> {
        self.changeable_device(device, Action::Command)?;
        self.inner.delete_attributes(device, scope, keys).await
    }

    async fn attributes(&self, device: &DeviceId) -> Result<Attributes> {
        if !self.sees_device_id(device.as_str()) {
            return Err(Self::hidden("device", device));
        }
        self.inner.attributes(device).await
    }

    async fn add_rejects(&self, r: Vec<NewReject>) -> Result<()> {
        self.inner.add_rejects(r).await
    }

    /// Dead letters of its own devices' tokens only (others may hold another commune's data).
    async fn rejects(&self, limit: u32) -> Result<Vec<Reject>> {
        let mut v = self.inner.rejects(limit).await?;
        v.retain(|r| self.visible_reject(r));
        Ok(v)
    }

    async fn rejects_by_id(&self, ids: &[i64]) -> Result<Vec<Reject>> {
        let mut v = self.inner.rejects_by_id(ids).await?;
        v.retain(|r| self.visible_reject(r));
        Ok(v)
    }

    async fn delete_rejects(&self, ids: &[i64]) -> Result<()> {
        let mine: Vec<i64> = self.rejects_by_id(ids).await?.into_iter().map(|r| r.id).collect();
        self.inner.delete_rejects(&mine).await
    }

    async fn update_reject_reason(&self, id: i64, reason: &str) -> Result<()> {
        if self.rejects_by_id(&[id]).await?.is_empty() {
            return Err(Self::hidden("dead letter", id));
        }
        self.inner.update_reject_reason(id, reason).await
    }
}

impl TenantView {
    fn visible_reject(&self, r: &Reject) -> bool {
        self.grant.sees_all()
            || r.token_device.as_ref().is_some_and(|d| self.sees_device_id(d.as_str()))
    }
}
