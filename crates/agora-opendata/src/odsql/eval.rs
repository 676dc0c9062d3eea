//! ODSQL checked against a dataset's fields and answered over its records.
//!
//! [`compile`] resolves names (fields, aliases), checks functions and where aggregates may be,
//! and infers each answered column's type (so `count(*)` is an integer and `avg(…)` a double in
//! JSON). A [`Run`] then takes records one at a time in the dataset's order: without
//! aggregates or `order_by` it hands each matching record back at once (exports stream);
//! with `order_by` it keeps only the best `offset + limit` (bounded memory); with aggregates it
//! keeps one accumulator per group.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::{Arith, Clause, Cmp, Expr, Item, Lit, OdsqlError, Query, Select};

/// A field's type, with the real API's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// `text`
    Text,
    /// `int`
    Int,
    /// `double`
    Double,
    /// `boolean`
    Bool,
    /// `datetime`
    DateTime,
    /// `date`
    Date,
    /// `geo_point_2d`
    GeoPoint,
}

impl FieldType {
    /// Its name in dataset schemas.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Int => "int",
            FieldType::Double => "double",
            FieldType::Bool => "boolean",
            FieldType::DateTime => "datetime",
            FieldType::Date => "date",
            FieldType::GeoPoint => "geo_point_2d",
        }
    }
}

/// A field of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Its name in queries and records.
    pub name: String,
    /// Label for people.
    pub label: String,
    /// Type.
    pub ftype: FieldType,
    /// What it is (with its unit).
    pub description: Option<String>,
    /// UCUM unit of a measurement.
    pub unit: Option<String>,
    /// Whether it is offered as a facet.
    pub facet: bool,
}

/// A value of a record or an answer.
#[derive(Debug, Clone)]
pub enum V {
    /// No value (a gap is never a zero).
    Null,
    /// A boolean.
    Bool(bool),
    /// A number.
    Num(f64),
    /// A text.
    Text(Arc<str>),
    /// An instant, ns since the epoch (a `date` field's value is its day's midnight, UTC).
    Time(i64),
    /// A point: latitude, longitude.
    Geo(f64, f64),
}

impl V {
    /// A text value.
    pub fn text(s: impl Into<Arc<str>>) -> Self {
        V::Text(s.into())
    }

    fn rank(&self) -> u8 {
        match self {
            V::Bool(_) => 0,
            V::Num(_) => 1,
            V::Text(_) => 2,
            V::Time(_) => 3,
            V::Geo(..) => 4,
            V::Null => 5,
        }
    }

    /// A total order for sorting: nulls last, then by kind, numbers by value.
    pub fn sort_cmp(&self, other: &V) -> Ordering {
        match (self, other) {
            (V::Bool(a), V::Bool(b)) => a.cmp(b),
            (V::Num(a), V::Num(b)) => a.total_cmp(b),
            (V::Text(a), V::Text(b)) => a.cmp(b),
            (V::Time(a), V::Time(b)) => a.cmp(b),
            (V::Geo(a, b), V::Geo(c, d)) => a.total_cmp(c).then(b.total_cmp(d)),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialEq for V {
    fn eq(&self, other: &V) -> bool {
        self.sort_cmp(other) == Ordering::Equal
    }
}

impl Eq for V {}

impl Hash for V {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.rank().hash(h);
        match self {
            V::Bool(b) => b.hash(h),
            V::Num(n) => (if *n == 0.0 { 0.0f64 } else { *n }).to_bits().hash(h),
            V::Text(t) => t.hash(h),
            V::Time(t) => t.hash(h),
            V::Geo(a, b) => (a.to_bits(), b.to_bits()).hash(h),
            V::Null => {}
        }
    }
}

/// A record: one value per field, in the dataset's field order.
pub type Row = Vec<V>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar {
    Year,
    Quarter,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Lower,
    Upper,
    Length,
    IfNull,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AggFn {
    CountAll,
    Count,
    CountDistinct,
    Avg,
    Sum,
    Min,
    Max,
}

/// A compiled expression.
#[derive(Debug, Clone)]
enum Ce {
    Field(usize),
    Lit(V),
    /// A group's key (grouped answers).
    Key(usize),
    /// An aggregate's value (grouped answers).
    Agg(usize),
    Neg(Box<Ce>),
    Arith(Arith, Box<Ce>, Box<Ce>),
    Cmp(Cmp, Box<Ce>, Box<Ce>),
    And(Box<Ce>, Box<Ce>),
    Or(Box<Ce>, Box<Ce>),
    Not(Box<Ce>),
    IsNull(Box<Ce>, bool),
    IsBool(Box<Ce>, bool),
    InList(Box<Ce>, Vec<Ce>),
    InRange(Box<Ce>, Option<Box<Ce>>, bool, Option<Box<Ce>>, bool),
    Like(Box<Ce>, Vec<String>),
    Search(Vec<usize>, Vec<String>),
    StartsWith(Box<Ce>, String),
    /// A scalar function; the flag: its argument is a `date` field (read in UTC).
    Call(Scalar, Vec<Ce>, bool),
    /// `date_format` with its parsed pattern.
    DateFormat(Box<Ce>, Vec<Piece>, bool),
}

/// The type of an answered column, for rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutType {
    /// A field's type.
    Of(FieldType),
    /// Anything (literals of mixed kinds).
    Any,
}

/// One answered column.
#[derive(Debug, Clone)]
pub struct Column {
    /// Its key in answers (alias, field name or expression text).
    pub key: String,
    /// Its type.
    pub ty: OutType,
    expr: Ce,
}

#[derive(Debug, Clone)]
struct AggSpec {
    f: AggFn,
    arg: Option<Ce>,
}

/// A query checked against a dataset.
#[derive(Debug, Clone)]
pub struct Compiled {
    filter: Option<Ce>,
    /// The answered columns.
    pub columns: Vec<Column>,
    /// Grouped (aggregates or `group_by`): the group keys and aggregates.
    groups: Option<(Vec<Ce>, Vec<AggSpec>)>,
    /// `order_by`: a column's index or an expression over the record, and descending.
    order: Vec<(OrderKey, bool)>,
    tz: Tz,
    /// The answered columns are the record's fields, in order (`select *`): records are
    /// answered as they are, without a copy.
    identity: bool,
}

#[derive(Debug, Clone)]
enum OrderKey {
    Column(usize),
    Expr(Ce),
}

/// What a query answered.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Answered rows (after offset and limit), one value per column.
    pub rows: Vec<Row>,
    /// Rows that matched before offset and limit (groups, for a grouped query).
    pub total: u64,
}

/// The aggregates a grouped query computes: function, argument, text (to share equal ones).
type Aggregates = Vec<(AggFn, Option<Ce>, String)>;

struct Ctx<'a> {
    fields: &'a [Field],
    tz: Tz,
    clause: Clause,
    /// Grouped context: the group keys' expressions and aggregates found so far.
    grouping: Option<(&'a [Item], &'a mut Aggregates)>,
    /// Select items by alias (order_by on a non-grouped query may name them).
    aliases: &'a [(String, Ce)],
}

/// Check `q` against `fields`; `tz` is the time zone date literals, `year()` … and
/// `date_format()` read in (the request's `timezone`, UTC by default).
pub fn compile(q: &Query, fields: &[Field], tz: Tz) -> Result<Compiled, OdsqlError> {
    let filter = match &q.filter {
        None => None,
        Some(e) => {
            let mut c = Ctx { fields, tz, clause: Clause::Where, grouping: None, aliases: &[] };
            Some(c.boolean(e)?)
        }
    };
    let items: Vec<Item> = match &q.select {
        Select::All if q.group_by.is_empty() => fields
            .iter()
            .map(|f| Item { expr: Expr::Field(f.name.clone()), alias: None, text: f.name.clone() })
            .collect(),
        Select::All => Vec::new(),
        Select::Items(items) => items.clone(),
    };
    let has_agg = items.iter().any(|i| contains_agg(&i.expr));
    if has_agg || !q.group_by.is_empty() {
        return compile_grouped(q, &items, fields, tz, filter);
    }
    let mut columns = Vec::new();
    let mut aliases = Vec::new();
    for it in &items {
        let mut c = Ctx { fields, tz, clause: Clause::Select, grouping: None, aliases: &[] };
        let expr = c.value(&it.expr)?;
        let ty = c.type_of(&it.expr);
        if let Some(a) = &it.alias {
            aliases.push((a.clone(), expr.clone()));
        }
        columns.push(Column { key: it.key().to_owned(), ty, expr });
    }
    unique_keys(&columns)?;
    let mut order = Vec::new();
    for o in &q.order_by {
        let mut c = Ctx { fields, tz, clause: Clause::OrderBy, grouping: None, aliases: &aliases };
        if contains_agg(&o.expr) {
            return Err(OdsqlError::malformed(
                Clause::OrderBy,
                format!("cannot order by the aggregation {} without aggregating", o.text),
            ));
        }
        order.push((OrderKey::Expr(c.value(&o.expr)?), o.desc));
    }
    let identity = columns.len() == fields.len()
        && columns.iter().enumerate().all(|(i, c)| matches!(c.expr, Ce::Field(j) if j == i));
    Ok(Compiled { filter, columns, groups: None, order, tz, identity })
}

fn compile_grouped(
    q: &Query,
    items: &[Item],
    fields: &[Field],
    tz: Tz,
    filter: Option<Ce>,
) -> Result<Compiled, OdsqlError> {
    let mut keys = Vec::new();
    for g in &q.group_by {
        if contains_agg(&g.expr) {
            return Err(OdsqlError::malformed(
                Clause::GroupBy,
                format!("cannot group by the aggregation {}", g.text),
            ));
        }
        let mut c = Ctx { fields, tz, clause: Clause::GroupBy, grouping: None, aliases: &[] };
        if let Expr::Field(name) = &g.expr
            && let Some(i) = fields.iter().position(|f| &f.name == name)
            && fields[i].ftype == FieldType::GeoPoint
        {
            return Err(OdsqlError::malformed(
                Clause::GroupBy,
                format!("cannot group by the geographic field {name}"),
            ));
        }
        keys.push(c.value(&g.expr)?);
    }
    let mut aggs: Aggregates = Vec::new();
    let mut columns = Vec::new();
    for it in items {
        let mut c = Ctx {
            fields,
            tz,
            clause: Clause::Select,
            grouping: Some((&q.group_by, &mut aggs)),
            aliases: &[],
        };
        let expr = c.value(&it.expr)?;
        let ty = c.type_of(&it.expr);
        columns.push(Column { key: it.key().to_owned(), ty, expr });
    }
    // Group keys not selected are answered too.
    for (i, g) in q.group_by.iter().enumerate() {
        if !columns.iter().any(|c| c.key == g.key()) {
            let c = Ctx { fields, tz, clause: Clause::GroupBy, grouping: None, aliases: &[] };
            columns.push(Column {
                key: g.key().to_owned(),
                ty: c.type_of(&g.expr),
                expr: Ce::Key(i),
            });
        }
    }
    unique_keys(&columns)?;
    let mut order = Vec::new();
    for o in &q.order_by {
        let by_key = columns
            .iter()
            .position(|c| c.key == o.text || matches!(&o.expr, Expr::Field(n) if *n == c.key));
        let idx = match by_key {
            Some(i) => i,
            None => {
                let mut c = Ctx {
                    fields,
                    tz,
                    clause: Clause::OrderBy,
                    grouping: Some((&q.group_by, &mut aggs)),
                    aliases: &[],
                };
                let expr = c.value(&o.expr)?;
                columns.push(Column { key: String::new(), ty: OutType::Any, expr });
                columns.len() - 1
            }
        };
        order.push((OrderKey::Column(idx), o.desc));
    }
    let aggs = aggs.into_iter().map(|(f, arg, _)| AggSpec { f, arg }).collect();
    Ok(Compiled { filter, columns, groups: Some((keys, aggs)), order, tz, identity: false })
}

/// Answers are keyed by column: two columns of one name would be one in JSON and ambiguous in
/// CSV and Parquet.
fn unique_keys(columns: &[Column]) -> Result<(), OdsqlError> {
    for (i, c) in columns.iter().enumerate() {
        if columns[..i].iter().any(|d| d.key == c.key) {
            return Err(OdsqlError::malformed(
                Clause::Select,
                format!("two columns are named {}: give one an alias", c.key),
            ));
        }
    }
    Ok(())
}

fn agg_fn(name: &str) -> Option<AggFn> {
    Some(match name {
        "count" => AggFn::Count,
        "count_distinct" => AggFn::CountDistinct,
        "avg" => AggFn::Avg,
        "sum" => AggFn::Sum,
        "min" => AggFn::Min,
        "max" => AggFn::Max,
        _ => return None,
    })
}

fn contains_agg(e: &Expr) -> bool {
    match e {
        Expr::Call(name, args) => agg_fn(name).is_some() || args.iter().any(contains_agg),
        Expr::Neg(a)
        | Expr::Not(a)
        | Expr::IsNull(a, _)
        | Expr::IsBool(a, _)
        | Expr::Like(a, _) => contains_agg(a),
        Expr::Arith(_, a, b) | Expr::Cmp(_, a, b) | Expr::And(a, b) | Expr::Or(a, b) => {
            contains_agg(a) || contains_agg(b)
        }
        Expr::InList(a, l) => contains_agg(a) || l.iter().any(contains_agg),
        Expr::InRange { e, lo, hi, .. } => {
            contains_agg(e)
                || lo.as_deref().is_some_and(contains_agg)
                || hi.as_deref().is_some_and(contains_agg)
        }
        _ => false,
    }
}

/// Functions known to ODSQL that agora does not answer: named in the error.
const UNSUPPORTED: &[&str] = &[
    "median",
    "percentile",
    "envelope",
    "bbox",
    "geo_cluster",
    "range",
    "now",
    "random",
    "distance",
    "within_distance",
    "intersects",
    "disjoint",
    "within",
    "json_format",
    "include",
    "exclude",
    "suggest",
    "dayofweek",
    "millisecond",
    "top",
    "equi",
];

impl Ctx<'_> {
    fn err(&self, detail: impl Into<String>) -> OdsqlError {
        OdsqlError::malformed(self.clause, detail)
    }

    fn field(&self, name: &str) -> Result<usize, OdsqlError> {
        self.fields
            .iter()
            .position(|f| f.name == name)
            .ok_or_else(|| self.err(format!("Unknown field: {name}")))
    }

    /// A condition: a bare string is a full-text search on every text field.
    fn boolean(&mut self, e: &Expr) -> Result<Ce, OdsqlError> {
        match e {
            Expr::Lit(Lit::Text(s)) => {
                Ok(Ce::Search(self.text_fields(), asked_terms(self.clause, s)?))
            }
            Expr::And(a, b) => Ok(Ce::And(Box::new(self.boolean(a)?), Box::new(self.boolean(b)?))),
            Expr::Or(a, b) => Ok(Ce::Or(Box::new(self.boolean(a)?), Box::new(self.boolean(b)?))),
            Expr::Not(a) => Ok(Ce::Not(Box::new(self.boolean(a)?))),
            _ => self.value(e),
        }
    }

    fn text_fields(&self) -> Vec<usize> {
        (0..self.fields.len()).filter(|&i| self.fields[i].ftype == FieldType::Text).collect()
    }

    fn is_date_field(&self, e: &Expr) -> bool {
        matches!(e, Expr::Field(n) if self.fields.iter().any(|f| &f.name == n && f.ftype == FieldType::Date))
    }

    fn value(&mut self, e: &Expr) -> Result<Ce, OdsqlError> {
        // In a grouped answer, an expression that is a group key is that key.
        if let Some((keys, _)) = &self.grouping
            && let Some(i) = keys.iter().position(|k| {
                k.expr == *e || matches!(e, Expr::Field(n) if k.alias.as_deref() == Some(n))
            })
        {
            return Ok(Ce::Key(i));
        }
        Ok(match e {
            Expr::Field(name) => {
                if let Some((_, ce)) = self.aliases.iter().find(|(a, _)| a == name) {
                    return Ok(ce.clone());
                }
                if self.grouping.is_some() {
                    return Err(
                        self.err(format!("{name} must be in the group_by clause, or aggregated"))
                    );
                }
                Ce::Field(self.field(name)?)
            }
            Expr::Star => return Err(self.err("* is only allowed in count(*) and search(*, …)")),
            Expr::Lit(l) => Ce::Lit(self.literal(l)?),
            Expr::Neg(a) => Ce::Neg(Box::new(self.value(a)?)),
            Expr::Arith(op, a, b) => {
                Ce::Arith(*op, Box::new(self.value(a)?), Box::new(self.value(b)?))
            }
            Expr::Cmp(op, a, b) => {
                let (ca, cb) = (self.value(a)?, self.value(b)?);
                Ce::Cmp(*op, Box::new(ca), Box::new(cb))
            }
            Expr::And(..) | Expr::Or(..) | Expr::Not(..) => return self.boolean(e),
            Expr::IsNull(a, neg) => Ce::IsNull(Box::new(self.value(a)?), *neg),
            Expr::IsBool(a, b) => Ce::IsBool(Box::new(self.value(a)?), *b),
            Expr::InList(a, list) => {
                let ca = self.value(a)?;
                let list = list.iter().map(|x| self.value(x)).collect::<Result<_, _>>()?;
                Ce::InList(Box::new(ca), list)
            }
            Expr::InRange { e, lo, lo_incl, hi, hi_incl } => {
                let ce = self.value(e)?;
                let lo = lo.as_deref().map(|x| self.value(x).map(Box::new)).transpose()?;
                let hi = hi.as_deref().map(|x| self.value(x).map(Box::new)).transpose()?;
                Ce::InRange(Box::new(ce), lo, *lo_incl, hi, *hi_incl)
            }
            Expr::Like(a, s) => Ce::Like(Box::new(self.value(a)?), asked_terms(self.clause, s)?),
            Expr::Call(name, args) => return self.call(name, args),
        })
    }

    fn literal(&self, l: &Lit) -> Result<V, OdsqlError> {
        Ok(match l {
            Lit::Null => V::Null,
            Lit::Bool(b) => V::Bool(*b),
            Lit::Num(n) => V::Num(*n),
            Lit::Text(s) => V::text(s.as_str()),
            Lit::Date(s) => V::Time(
                parse_date(s, self.tz)
                    .ok_or_else(|| self.err(format!("Invalid date literal: date'{s}'")))?,
            ),
        })
    }

    fn call(&mut self, name: &str, args: &[Expr]) -> Result<Ce, OdsqlError> {
        if let Some(f) = agg_fn(name) {
            if self.clause == Clause::Where {
                return Err(self.err(format!("aggregation {name}() is not allowed in where")));
            }
            if self.grouping.is_none() {
                return Err(self.err(format!("aggregation {name}() is not allowed here")));
            }
            let (f, arg, text) = match (f, args) {
                (AggFn::Count, [Expr::Star]) => (AggFn::CountAll, None, "count(*)".to_owned()),
                (_, [Expr::Field(n)]) => {
                    let i = self.fields.iter().position(|x| &x.name == n).ok_or_else(|| {
                        OdsqlError::malformed(self.clause, format!("Unknown field: {n}"))
                    })?;
                    let ft = self.fields[i].ftype;
                    let numeric = matches!(ft, FieldType::Int | FieldType::Double);
                    let ordered = numeric || matches!(ft, FieldType::DateTime | FieldType::Date);
                    let ok = match f {
                        AggFn::Avg | AggFn::Sum => numeric,
                        AggFn::Min | AggFn::Max => ordered,
                        _ => true,
                    };
                    if !ok {
                        return Err(OdsqlError::malformed(
                            self.clause,
                            format!("{name}() needs a numeric field, {n} is {}", ft.as_str()),
                        ));
                    }
                    (f, Some(Ce::Field(i)), format!("{name}({n})"))
                }
                _ => {
                    return Err(OdsqlError::malformed(
                        self.clause,
                        format!(
                            "{name}() takes one field{}",
                            if f == AggFn::Count { " or *" } else { "" }
                        ),
                    ));
                }
            };
            let Some((_, aggs)) = &mut self.grouping else { unreachable!() };
            let i = match aggs.iter().position(|(_, _, t)| *t == text) {
                Some(i) => i,
                None => {
                    aggs.push((f, arg, text));
                    aggs.len() - 1
                }
            };
            return Ok(Ce::Agg(i));
        }
        if UNSUPPORTED.contains(&name) {
            return Err(self.err(format!("the function {name}() is not supported by this server")));
        }
        match name {
            "search" | "startswith" => {
                if self.clause != Clause::Where {
                    return Err(self.err(format!("{name}() is only allowed in where")));
                }
                let Some((Expr::Lit(Lit::Text(text)), targets)) = args.split_last() else {
                    return Err(self.err(format!("{name}() takes fields (or *) then a text")));
                };
                if name == "startswith" {
                    let [target] = targets else {
                        return Err(self.err("startswith() takes one field then a text"));
                    };
                    return Ok(Ce::StartsWith(Box::new(self.value(target)?), text.clone()));
                }
                let mut idx = Vec::new();
                for t in targets {
                    match t {
                        Expr::Star => idx.extend(self.text_fields()),
                        Expr::Field(n) => idx.push(self.field(n)?),
                        _ => return Err(self.err("search() takes fields (or *) then a text")),
                    }
                }
                if targets.is_empty() {
                    idx = self.text_fields();
                }
                Ok(Ce::Search(idx, asked_terms(self.clause, text)?))
            }
            "date_format" => {
                let [d, Expr::Lit(Lit::Text(pattern))] = args else {
                    return Err(self.err("date_format() takes a date and a pattern text"));
                };
                let utc = self.is_date_field(d);
                let pieces = parse_pattern(pattern).map_err(|e| self.err(e))?;
                Ok(Ce::DateFormat(Box::new(self.value(d)?), pieces, utc))
            }
            _ => {
                let (f, n) = match name {
                    "year" => (Scalar::Year, 1),
                    "quarter" => (Scalar::Quarter, 1),
                    "month" => (Scalar::Month, 1),
                    "day" => (Scalar::Day, 1),
                    "hour" => (Scalar::Hour, 1),
                    "minute" => (Scalar::Minute, 1),
                    "second" => (Scalar::Second, 1),
                    "lower" => (Scalar::Lower, 1),
                    "upper" => (Scalar::Upper, 1),
                    "length" => (Scalar::Length, 1),
                    "ifnull" => (Scalar::IfNull, 2),
                    _ => return Err(self.err(format!("Unknown function: {name}"))),
                };
                if args.len() != n {
                    return Err(self.err(format!(
                        "{name}() takes {n} argument{}",
                        if n == 1 { "" } else { "s" }
                    )));
                }
                let utc = self.is_date_field(&args[0]);
                let args = args.iter().map(|a| self.value(a)).collect::<Result<_, _>>()?;
                Ok(Ce::Call(f, args, utc))
            }
        }
    }

    fn type_of(&self, e: &Expr) -> OutType {
        use FieldType as T;
        match e {
            Expr::Field(n) => self
                .fields
                .iter()
                .find(|f| &f.name == n)
                .map_or(OutType::Any, |f| OutType::Of(f.ftype)),
            Expr::Lit(Lit::Num(n)) if n.fract() == 0.0 => OutType::Of(T::Int),
            Expr::Lit(Lit::Num(_)) => OutType::Of(T::Double),
            Expr::Lit(Lit::Text(_)) => OutType::Of(T::Text),
            Expr::Lit(Lit::Date(_)) => OutType::Of(T::DateTime),
            Expr::Lit(Lit::Bool(_)) => OutType::Of(T::Bool),
            Expr::Cmp(..) | Expr::And(..) | Expr::Or(..) | Expr::Not(..) | Expr::IsNull(..) => {
                OutType::Of(T::Bool)
            }
            Expr::Neg(a) => self.type_of(a),
            Expr::Arith(op, a, b) => match (self.type_of(a), self.type_of(b)) {
                (OutType::Of(T::Int), OutType::Of(T::Int)) if *op != Arith::Div => {
                    OutType::Of(T::Int)
                }
                _ => OutType::Of(T::Double),
            },
            Expr::Call(name, args) => match name.as_str() {
                "count" | "count_distinct" | "year" | "quarter" | "month" | "day" | "hour"
                | "minute" | "second" | "length" => OutType::Of(T::Int),
                "avg" => OutType::Of(T::Double),
                "sum" | "min" | "max" | "ifnull" => {
                    args.first().map_or(OutType::Any, |a| self.type_of(a))
                }
                "date_format" | "lower" | "upper" => OutType::Of(T::Text),
                _ => OutType::Any,
            },
            _ => OutType::Any,
        }
    }
}

/// Most words of a `search()` or `like` text, and most characters of each.
const MAX_TERMS: usize = 16;
const MAX_TERM_CHARS: usize = 64;

/// The words asked by `search()` or `like`, refused when too many or too long.
fn asked_terms(clause: Clause, s: &str) -> Result<Vec<String>, OdsqlError> {
    let t = terms(s);
    if t.len() > MAX_TERMS || t.iter().any(|w| w.chars().count() > MAX_TERM_CHARS) {
        return Err(OdsqlError::malformed(
            clause,
            format!("a search is at most {MAX_TERMS} words of {MAX_TERM_CHARS} characters"),
        ));
    }
    Ok(t)
}

/// Lowercased words of a text, for `search()` and `like`.
fn terms(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// A date literal: `2024`, `2024-05`, `2024-05-01`, `2024/05/01`, `2024-05-01T10:00[:00[.sss]]`
/// with an optional `Z` or offset; without one, read in `tz`. Ns since the epoch.
pub fn parse_date(s: &str, tz: Tz) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return t.timestamp_nanos_opt();
    }
    for f in ["%Y-%m-%dT%H:%M%:z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%dT%H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return t.timestamp_nanos_opt();
        }
    }
    let s2 = s.replace('/', "-");
    let naive = if let Ok(t) = NaiveDateTime::parse_from_str(&s2, "%Y-%m-%dT%H:%M:%S%.f") {
        t
    } else if let Ok(t) = NaiveDateTime::parse_from_str(&s2, "%Y-%m-%dT%H:%M") {
        t
    } else if let Ok(t) = NaiveDateTime::parse_from_str(&s2, "%Y-%m-%d %H:%M:%S") {
        t
    } else if let Ok(d) = NaiveDate::parse_from_str(&s2, "%Y-%m-%d") {
        d.and_hms_opt(0, 0, 0)?
    } else if let Some((y, m)) = s2.split_once('-') {
        let (y, m): (i32, u32) = (y.parse().ok()?, m.parse().ok()?);
        NaiveDate::from_ymd_opt(y, m, 1)?.and_hms_opt(0, 0, 0)?
    } else if s2.len() == 4 {
        NaiveDate::from_ymd_opt(s2.parse().ok()?, 1, 1)?.and_hms_opt(0, 0, 0)?
    } else {
        return None;
    };
    tz.from_local_datetime(&naive).earliest()?.timestamp_nanos_opt()
}

/// A piece of a `date_format` pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Text as is.
    Text(String),
    /// A symbol repeated (`yyyy`, `MM`, `dd`…).
    Sym(char, usize),
}

fn parse_pattern(p: &str) -> Result<Vec<Piece>, String> {
    if p.chars().count() > 64 {
        return Err("a date_format pattern is at most 64 characters".into());
    }
    let chars: Vec<char> = p.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("unterminated quote in date_format pattern {p}")),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        s.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            out.push(Piece::Text(if s.is_empty() { "'".into() } else { s }));
        } else if "yYxMwdDHmseE".contains(c) {
            let mut n = 1;
            while chars.get(i + n) == Some(&c) {
                n += 1;
            }
            out.push(Piece::Sym(c, n));
            i += n;
        } else if c.is_alphabetic() {
            return Err(format!("date_format pattern {p}: unknown symbol {c}"));
        } else {
            out.push(Piece::Text(c.to_string()));
            i += 1;
        }
    }
    Ok(out)
}

const DAYS_FR: [&str; 7] =
    ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"];
const MONTHS_FR: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

fn format_date(pieces: &[Piece], t: &DateTime<Tz>) -> String {
    let mut s = String::new();
    for p in pieces {
        match p {
            Piece::Text(x) => s.push_str(x),
            Piece::Sym(c, n) => {
                let v: String = match (c, n) {
                    ('y' | 'Y', 2) => format!("{:02}", t.year().rem_euclid(100)),
                    ('y' | 'Y', _) => format!("{:04}", t.year()),
                    ('x', 2) => format!("{:02}", t.iso_week().year().rem_euclid(100)),
                    ('x', _) => format!("{:04}", t.iso_week().year()),
                    ('w', 1) => t.iso_week().week().to_string(),
                    ('w', _) => format!("{:02}", t.iso_week().week()),
                    ('M', 1) => t.month().to_string(),
                    ('M', 2) => format!("{:02}", t.month()),
                    ('M', _) => MONTHS_FR[t.month0() as usize].to_owned(),
                    ('d', 1) => t.day().to_string(),
                    ('d', _) => format!("{:02}", t.day()),
                    ('D', 1) => t.ordinal().to_string(),
                    ('D', _) => format!("{:03}", t.ordinal()),
                    ('e', _) => t.weekday().number_from_monday().to_string(),
                    ('E', 4..) => DAYS_FR[t.weekday().num_days_from_monday() as usize].to_owned(),
                    ('E', _) => {
                        DAYS_FR[t.weekday().num_days_from_monday() as usize][..3].to_owned()
                    }
                    ('H', 1) => t.hour().to_string(),
                    ('H', _) => format!("{:02}", t.hour()),
                    ('m', 1) => t.minute().to_string(),
                    ('m', _) => format!("{:02}", t.minute()),
                    ('s', 1) => t.second().to_string(),
                    (_, _) => format!("{:02}", t.second()),
                };
                s.push_str(&v);
            }
        }
    }
    s
}

fn to_local(ns: i64, tz: Tz, utc: bool) -> DateTime<Tz> {
    let t = DateTime::<Utc>::from_timestamp_nanos(ns);
    t.with_timezone(if utc { &Tz::UTC } else { &tz })
}

/// Whether one of `value`'s words is `term`: exactly, or for a search as a prefix (`prefix`,
/// the query's last word) or with the real API's typos: one edit from 3 letters, two from 6.
fn word_matches(value: &str, term: &str, search: bool, prefix: bool) -> bool {
    let n = term.chars().count();
    let typos = if !search {
        0
    } else if n > 5 {
        2
    } else if n > 2 {
        1
    } else {
        0
    };
    terms(value).iter().any(|x| {
        x == term
            || (prefix && x.starts_with(term))
            || (typos > 0
                && x.chars().count().abs_diff(n) <= typos
                && levenshtein(x, term) <= typos)
    })
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Compare for `=`, `<`…: numbers, texts, instants (a text read as a date), booleans. `None`
/// when either is null or they cannot be compared (then the comparison is false).
fn compare(a: &V, b: &V, tz: Tz) -> Option<Ordering> {
    match (a, b) {
        (V::Null, _) | (_, V::Null) => None,
        (V::Num(x), V::Num(y)) => x.partial_cmp(y),
        (V::Text(x), V::Text(y)) => Some(x.cmp(y)),
        (V::Time(x), V::Time(y)) => Some(x.cmp(y)),
        (V::Time(x), V::Text(y)) => parse_date(y, tz).map(|y| x.cmp(&y)),
        (V::Text(x), V::Time(y)) => parse_date(x, tz).map(|x| x.cmp(y)),
        (V::Bool(x), V::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn truth(v: &V) -> bool {
    matches!(v, V::Bool(true))
}

impl Compiled {
    fn eval(&self, e: &Ce, row: &[V], keys: &[V], aggs: &[V]) -> V {
        let ev = |x: &Ce| self.eval(x, row, keys, aggs);
        match e {
            Ce::Field(i) => row.get(*i).cloned().unwrap_or(V::Null),
            Ce::Lit(v) => v.clone(),
            Ce::Key(i) => keys.get(*i).cloned().unwrap_or(V::Null),
            Ce::Agg(i) => aggs.get(*i).cloned().unwrap_or(V::Null),
            Ce::Neg(a) => match ev(a) {
                V::Num(n) => V::Num(-n),
                _ => V::Null,
            },
            Ce::Arith(op, a, b) => match (ev(a), ev(b)) {
                (V::Num(x), V::Num(y)) => {
                    let r = match op {
                        Arith::Add => x + y,
                        Arith::Sub => x - y,
                        Arith::Mul => x * y,
                        Arith::Div if y == 0.0 => return V::Null,
                        Arith::Div => x / y,
                    };
                    if r.is_finite() { V::Num(r) } else { V::Null }
                }
                _ => V::Null,
            },
            Ce::Cmp(op, a, b) => {
                let Some(o) = compare(&ev(a), &ev(b), self.tz) else { return V::Bool(false) };
                V::Bool(match op {
                    Cmp::Eq => o == Ordering::Equal,
                    Cmp::Ne => o != Ordering::Equal,
                    Cmp::Lt => o == Ordering::Less,
                    Cmp::Le => o != Ordering::Greater,
                    Cmp::Gt => o == Ordering::Greater,
                    Cmp::Ge => o != Ordering::Less,
                })
            }
            Ce::And(a, b) => V::Bool(truth(&ev(a)) && truth(&ev(b))),
            Ce::Or(a, b) => V::Bool(truth(&ev(a)) || truth(&ev(b))),
            Ce::Not(a) => V::Bool(!truth(&ev(a))),
            Ce::IsNull(a, negated) => V::Bool(matches!(ev(a), V::Null) != *negated),
            Ce::IsBool(a, b) => V::Bool(matches!(ev(a), V::Bool(x) if x == *b)),
            Ce::InList(a, list) => {
                let v = ev(a);
                V::Bool(list.iter().any(|x| compare(&v, &ev(x), self.tz) == Some(Ordering::Equal)))
            }
            Ce::InRange(a, lo, lo_incl, hi, hi_incl) => {
                let v = ev(a);
                if matches!(v, V::Null) {
                    return V::Bool(false);
                }
                let above = lo.as_ref().is_none_or(|lo| {
                    matches!(compare(&v, &ev(lo), self.tz), Some(o) if o == Ordering::Greater || (*lo_incl && o == Ordering::Equal))
                });
                let below = hi.as_ref().is_none_or(|hi| {
                    matches!(compare(&v, &ev(hi), self.tz), Some(o) if o == Ordering::Less || (*hi_incl && o == Ordering::Equal))
                });
                V::Bool(above && below)
            }
            Ce::Like(a, wanted) => match ev(a) {
                V::Text(t) => V::Bool(wanted.iter().all(|w| word_matches(&t, w, false, false))),
                _ => V::Bool(false),
            },
            Ce::Search(fields, wanted) => V::Bool(wanted.iter().enumerate().all(|(i, w)| {
                let prefix = i + 1 == wanted.len();
                fields.iter().any(
                    |&f| matches!(row.get(f), Some(V::Text(t)) if word_matches(t, w, true, prefix)),
                )
            })),
            Ce::StartsWith(a, prefix) => match ev(a) {
                V::Text(t) => V::Bool(t.starts_with(prefix.as_str())),
                _ => V::Bool(false),
            },
            Ce::DateFormat(a, pieces, utc) => match ev(a) {
                V::Time(ns) => V::text(format_date(pieces, &to_local(ns, self.tz, *utc))),
                _ => V::Null,
            },
            Ce::Call(f, args, utc) => {
                let v = ev(&args[0]);
                match f {
                    Scalar::Lower => match v {
                        V::Text(t) => V::text(t.to_lowercase()),
                        _ => V::Null,
                    },
                    Scalar::Upper => match v {
                        V::Text(t) => V::text(t.to_uppercase()),
                        _ => V::Null,
                    },
                    Scalar::Length => match v {
                        V::Text(t) => V::Num(t.chars().count() as f64),
                        _ => V::Null,
                    },
                    Scalar::IfNull => match v {
                        V::Null => ev(&args[1]),
                        v => v,
                    },
                    _ => {
                        let V::Time(ns) = v else { return V::Null };
                        let t = to_local(ns, self.tz, *utc);
                        V::Num(match f {
                            Scalar::Year => t.year() as f64,
                            Scalar::Quarter => (t.month0() / 3 + 1) as f64,
                            Scalar::Month => t.month() as f64,
                            Scalar::Day => t.day() as f64,
                            Scalar::Hour => t.hour() as f64,
                            Scalar::Minute => t.minute() as f64,
                            _ => t.second() as f64,
                        })
                    }
                }
            }
        }
    }

    /// Whether a record passes `where`.
    pub fn matches(&self, row: &[V]) -> bool {
        self.filter.as_ref().is_none_or(|f| truth(&self.eval(f, row, &[], &[])))
    }

    /// Whether records are answered one at a time, in the dataset's order (no aggregate, no
    /// `order_by`): what exports stream.
    pub fn streams(&self) -> bool {
        self.groups.is_none() && self.order.is_empty()
    }

    /// Whether the query aggregates.
    pub fn is_grouped(&self) -> bool {
        self.groups.is_some()
    }

    /// The answered columns of a record that passed.
    pub fn project(&self, row: &[V]) -> Row {
        self.columns.iter().map(|c| self.eval(&c.expr, row, &[], &[])).collect()
    }

    /// A run keeping at most `keep` answered rows in memory when ordering (`offset + limit`);
    /// `None` keeps every row.
    pub fn run(&self, keep: Option<usize>) -> Run<'_> {
        Run { c: self, keep, total: 0, rows: Vec::new(), groups: HashMap::new() }
    }

    /// How many columns are answered (hidden order columns of grouped queries left out).
    pub fn answered(&self) -> usize {
        self.columns.iter().filter(|c| !c.key.is_empty()).count()
    }
}

#[derive(Debug, Clone)]
struct Acc {
    n: u64,
    sum: f64,
    min: Option<V>,
    max: Option<V>,
    distinct: Option<std::collections::HashSet<V>>,
}

/// A query being answered over records given one at a time.
#[derive(Debug)]
pub struct Run<'c> {
    c: &'c Compiled,
    keep: Option<usize>,
    total: u64,
    rows: Vec<(Row, Row)>,
    groups: HashMap<Vec<V>, Vec<Acc>>,
}

/// Most groups one query may make: beyond, the answer is refused rather than the memory spent.
pub const MAX_GROUPS: usize = 100_000;

impl Run<'_> {
    /// Take one record. A streaming query answers it at once (when it passes); others keep it.
    pub fn push(&mut self, row: &[V]) -> Result<Option<Row>, OdsqlError> {
        let c = self.c;
        if !c.matches(row) {
            return Ok(None);
        }
        if let Some((keys, aggs)) = &c.groups {
            let key: Vec<V> = keys.iter().map(|k| c.eval(k, row, &[], &[])).collect();
            if !self.groups.contains_key(&key) {
                if self.groups.len() >= MAX_GROUPS {
                    return Err(OdsqlError::malformed(
                        Clause::GroupBy,
                        format!("more than {MAX_GROUPS} groups; group more coarsely"),
                    ));
                }
                let fresh = aggs
                    .iter()
                    .map(|a| Acc {
                        n: 0,
                        sum: 0.0,
                        min: None,
                        max: None,
                        distinct: (a.f == AggFn::CountDistinct).then(Default::default),
                    })
                    .collect();
                self.groups.insert(key.clone(), fresh);
            }
            let accs = self.groups.get_mut(&key).expect("inserted above");
            for (a, acc) in aggs.iter().zip(accs.iter_mut()) {
                if a.f == AggFn::CountAll {
                    acc.n += 1;
                    continue;
                }
                let v = c.eval(a.arg.as_ref().expect("an argument"), row, &[], &[]);
                if matches!(v, V::Null) {
                    continue;
                }
                acc.n += 1;
                if let V::Num(x) = v {
                    acc.sum += x;
                }
                if let Some(d) = &mut acc.distinct {
                    d.insert(v.clone());
                }
                if acc.min.as_ref().is_none_or(|m| v.sort_cmp(m) == Ordering::Less) {
                    acc.min = Some(v.clone());
                }
                if acc.max.as_ref().is_none_or(|m| v.sort_cmp(m) == Ordering::Greater) {
                    acc.max = Some(v);
                }
            }
            return Ok(None);
        }
        self.total += 1;
        let out = c.project(row);
        if c.order.is_empty() {
            return Ok(Some(out));
        }
        let key: Row = c
            .order
            .iter()
            .map(|(k, _)| match k {
                OrderKey::Expr(e) => c.eval(e, row, &[], &[]),
                OrderKey::Column(i) => out[*i].clone(),
            })
            .collect();
        self.rows.push((key, out));
        if let Some(keep) = self.keep
            && self.rows.len() >= keep.max(1024).saturating_mul(2)
        {
            self.sort_rows();
            self.rows.truncate(keep);
        }
        Ok(None)
    }

    fn sort_rows(&mut self) {
        let order = &self.c.order;
        self.rows.sort_by(|(a, _), (b, _)| ordered(a, b, order.iter().map(|(_, d)| *d)));
    }

    /// [`Run::push`] of a record given away: a `select *` answers it without a copy.
    pub fn push_owned(&mut self, row: Row) -> Result<Option<Row>, OdsqlError> {
        let c = self.c;
        if c.groups.is_some() || !c.order.is_empty() || !c.identity {
            return self.push(&row);
        }
        if !c.matches(&row) {
            return Ok(None);
        }
        self.total += 1;
        Ok(Some(row))
    }

    /// Rows matched so far (streaming queries count as they go).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The rows kept, ordered (streaming queries keep none), and the count of matches (groups).
    pub fn finish(mut self) -> Outcome {
        let c = self.c;
        let Some((_, aggs)) = &c.groups else {
            self.sort_rows();
            let total = self.total;
            return Outcome { rows: self.rows.into_iter().map(|(_, r)| r).collect(), total };
        };
        // Without group_by, aggregates over no record still answer one row.
        if self.groups.is_empty() && c.groups.as_ref().is_some_and(|(k, _)| k.is_empty()) {
            self.groups.insert(
                Vec::new(),
                aggs.iter()
                    .map(|a| Acc {
                        n: 0,
                        sum: 0.0,
                        min: None,
                        max: None,
                        distinct: (a.f == AggFn::CountDistinct).then(Default::default),
                    })
                    .collect(),
            );
        }
        let mut out: Vec<(Vec<V>, Row)> = self
            .groups
            .into_iter()
            .map(|(key, accs)| {
                let values: Vec<V> = aggs
                    .iter()
                    .zip(&accs)
                    .map(|(a, acc)| match a.f {
                        AggFn::CountAll | AggFn::Count => V::Num(acc.n as f64),
                        AggFn::CountDistinct => {
                            V::Num(acc.distinct.as_ref().map_or(0, |d| d.len()) as f64)
                        }
                        AggFn::Avg if acc.n > 0 => V::Num(acc.sum / acc.n as f64),
                        AggFn::Sum if acc.n > 0 => V::Num(acc.sum),
                        AggFn::Min => acc.min.clone().unwrap_or(V::Null),
                        AggFn::Max => acc.max.clone().unwrap_or(V::Null),
                        _ => V::Null,
                    })
                    .collect();
                let row: Row =
                    c.columns.iter().map(|col| c.eval(&col.expr, &[], &key, &values)).collect();
                (key, row)
            })
            .collect();
        let total = out.len() as u64;
        if c.order.is_empty() {
            out.sort_by(|(a, _), (b, _)| ordered(a, b, std::iter::repeat(false)));
        } else {
            out.sort_by(|(_, a), (_, b)| {
                let ka: Vec<V> = c.order.iter().map(|(k, _)| col(k, a)).collect();
                let kb: Vec<V> = c.order.iter().map(|(k, _)| col(k, b)).collect();
                ordered(&ka, &kb, c.order.iter().map(|(_, d)| *d))
            });
        }
        let n = c.answered();
        Outcome {
            rows: out
                .into_iter()
                .map(|(_, mut r)| {
                    r.truncate(n);
                    r
                })
                .collect(),
            total,
        }
    }
}

fn col(k: &OrderKey, row: &[V]) -> V {
    match k {
        OrderKey::Column(i) => row[*i].clone(),
        OrderKey::Expr(_) => V::Null,
    }
}

/// Compare sort keys; nulls come last whatever the direction, as on the real API.
fn ordered(a: &[V], b: &[V], desc: impl Iterator<Item = bool>) -> Ordering {
    for ((x, y), d) in a.iter().zip(b).zip(desc) {
        let o = match (x, y) {
            (V::Null, V::Null) => Ordering::Equal,
            (V::Null, _) => Ordering::Greater,
            (_, V::Null) => Ordering::Less,
            _ if d => y.sort_cmp(x),
            _ => x.sort_cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, ftype: FieldType) -> Field {
        Field {
            name: name.into(),
            label: name.into(),
            ftype,
            description: None,
            unit: None,
            facet: false,
        }
    }

    fn fields() -> Vec<Field> {
        vec![
            field("date", FieldType::DateTime),
            field("site_name", FieldType::Text),
            field("pm10", FieldType::Double),
            field("people", FieldType::Int),
        ]
    }

    fn t(s: &str) -> V {
        V::Time(parse_date(s, Tz::UTC).unwrap())
    }

    /// Six records: two places, three months; one PM10 missing.
    fn rows() -> Vec<Row> {
        let r = |d: &str, s: &str, pm: Option<f64>, n: f64| {
            vec![t(d), V::text(s), pm.map_or(V::Null, V::Num), V::Num(n)]
        };
        vec![
            r("2024-01-15T10:00:00Z", "Hôtel de Ville", Some(20.0), 100.0),
            r("2024-01-20T10:00:00Z", "La Rotonde", Some(30.0), 300.0),
            r("2024-02-10T10:00:00Z", "Hôtel de Ville", None, 50.0),
            r("2024-02-11T23:30:00Z", "La Rotonde", Some(50.0), 10.0),
            r("2024-03-01T00:00:00Z", "Hôtel de Ville", Some(10.0), 0.0),
            r("2024-03-31T22:30:00Z", "La Rotonde", Some(40.0), 7.0),
        ]
    }

    fn answer(
        select: Option<&str>,
        wh: &[&str],
        group: Option<&str>,
        order: Option<&str>,
    ) -> (Vec<String>, Outcome) {
        answer_tz(select, wh, group, order, Tz::UTC)
    }

    fn answer_tz(
        select: Option<&str>,
        wh: &[&str],
        group: Option<&str>,
        order: Option<&str>,
        tz: Tz,
    ) -> (Vec<String>, Outcome) {
        let q = Query::parse(select, wh, group, order).unwrap();
        let c = compile(&q, &fields(), tz).unwrap();
        let mut run = c.run(None);
        let mut streamed = Vec::new();
        for r in rows() {
            if let Some(out) = run.push(&r).unwrap() {
                streamed.push(out);
            }
        }
        let keys = c.columns.iter().filter(|c| !c.key.is_empty()).map(|c| c.key.clone()).collect();
        let mut o = run.finish();
        if c.streams() {
            o.rows = streamed;
        }
        (keys, o)
    }

    fn nums(o: &Outcome, col: usize) -> Vec<Option<f64>> {
        o.rows
            .iter()
            .map(|r| match &r[col] {
                V::Num(n) => Some(*n),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn filters_compare_dates_ranges_and_skip_nulls() {
        let (_, o) = answer(None, &["pm10 > 25"], None, None);
        assert_eq!(o.total, 3, "null PM10 never compares");
        let (_, o) = answer(None, &["not pm10 > 25"], None, None);
        assert_eq!(o.total, 3, "not of a false comparison with null is true (2 low + 1 null)");
        let (_, o) = answer(None, &["date >= date'2024-02'", "date < date'2024-03'"], None, None);
        assert_eq!(o.total, 2, "two where clauses are and-ed");
        let (_, o) = answer(None, &["date in [date'2024-02' .. date'2024-03-01']"], None, None);
        assert_eq!(o.total, 3, "inclusive range takes 1 March 00:00");
        let (_, o) = answer(None, &["date in [date'2024-02' .. date'2024-03-01'["], None, None);
        assert_eq!(o.total, 2);
        let (_, o) = answer(None, &["people in (0, 7, 300)"], None, None);
        assert_eq!(o.total, 3);
        let (_, o) = answer(None, &["pm10 is null"], None, None);
        assert_eq!(o.total, 1);
        let (_, o) = answer(None, &["site_name = 'La Rotonde' or people >= 100"], None, None);
        assert_eq!(o.total, 4);
        let (_, o) = answer(None, &["\"rotond\""], None, None);
        assert_eq!(o.total, 3, "a bare string searches text fields, last word as a prefix");
        let (_, o) = answer(None, &["search(site_name, 'hotel de vile')"], None, None);
        assert_eq!(o.total, 3, "hotel is one edit from hôtel, vile from ville: a typo each");
        let (_, o) = answer(None, &["search(site_name, 'hotal de ville')"], None, None);
        assert_eq!(o.total, 0, "hotal is two edits from hôtel: five letters allow one");
        let (_, o) = answer(None, &["search(*, 'rotonde ville')"], None, None);
        assert_eq!(o.total, 0, "every word must be found");
        let (_, o) = answer(None, &["search(*, 'ro')"], None, None);
        assert_eq!(o.total, 3, "the last word is a prefix");
        let (_, o) = answer(None, &["search(*, 'ro la')"], None, None);
        assert_eq!(o.total, 0, "only the last word is a prefix");
        let (_, o) = answer(None, &["site_name like 'rotonde'"], None, None);
        assert_eq!(o.total, 3);
        let (_, o) = answer(None, &["startswith(site_name, 'La')"], None, None);
        assert_eq!(o.total, 3);
        let (_, o) = answer(None, &["date >= '2024-03-01'"], None, None);
        assert_eq!(o.total, 2, "a text compared with a date is read as a date");
    }

    #[test]
    fn select_projects_and_computes() {
        let (keys, o) =
            answer(Some("site_name as place, pm10 * 2 as double_pm, people / 0"), &[], None, None);
        assert_eq!(keys, ["place", "double_pm", "people / 0"]);
        assert_eq!(
            nums(&o, 1),
            [Some(40.0), Some(60.0), None, Some(100.0), Some(20.0), Some(80.0)]
        );
        assert_eq!(nums(&o, 2), [None; 6], "a division by zero is null");
        let (_, o) = answer(Some("pm10"), &[], None, Some("pm10 desc"));
        assert_eq!(
            nums(&o, 0),
            [Some(50.0), Some(40.0), Some(30.0), Some(20.0), Some(10.0), None],
            "nulls last"
        );
        let (_, o) = answer(Some("pm10"), &[], None, Some("pm10"));
        assert_eq!(
            nums(&o, 0),
            [Some(10.0), Some(20.0), Some(30.0), Some(40.0), Some(50.0), None],
            "nulls last ascending too"
        );
    }

    #[test]
    fn aggregates_and_groups_match_hand_sums() {
        let (keys, o) = answer(
            Some("count(*), count(pm10), avg(pm10) as mean, sum(people), min(pm10), max(date)"),
            &[],
            None,
            None,
        );
        assert_eq!(
            keys,
            ["count(*)", "count(pm10)", "mean", "sum(people)", "min(pm10)", "max(date)"]
        );
        assert_eq!(o.rows.len(), 1);
        assert_eq!(nums(&o, 0)[0], Some(6.0));
        assert_eq!(nums(&o, 1)[0], Some(5.0), "count(f) counts non-null values");
        assert_eq!(
            nums(&o, 2)[0],
            Some(30.0),
            "(20+30+50+10+40)/5: the null is skipped, not a zero"
        );
        assert_eq!(nums(&o, 3)[0], Some(467.0));
        assert_eq!(nums(&o, 4)[0], Some(10.0));
        assert_eq!(o.rows[0][5], t("2024-03-31T22:30:00Z"));

        let (keys, o) = answer(
            Some("month(date) as m, avg(pm10) as mean, count(*) as n"),
            &[],
            Some("month(date) as m"),
            Some("m desc"),
        );
        assert_eq!(keys, ["m", "mean", "n"]);
        assert_eq!(nums(&o, 0), [Some(3.0), Some(2.0), Some(1.0)]);
        assert_eq!(nums(&o, 1), [Some(25.0), Some(50.0), Some(25.0)]);
        assert_eq!(nums(&o, 2), [Some(2.0), Some(2.0), Some(2.0)]);

        // In Paris, 11 Feb 23:30 UTC is 12 Feb and 31 March 22:30 UTC is 1 April (summer time).
        let (_, o) = answer_tz(
            Some("date_format(date, 'yyyy-MM-dd') as d, count(*) as n"),
            &["site_name = 'La Rotonde'"],
            Some("date_format(date, 'yyyy-MM-dd') as d"),
            None,
            chrono_tz::Europe::Paris,
        );
        let days: Vec<String> = o
            .rows
            .iter()
            .map(|r| match &r[0] {
                V::Text(t) => t.to_string(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(days, ["2024-01-20", "2024-02-12", "2024-04-01"]);

        let (keys, o) = answer(Some("count(*)"), &[], Some("site_name"), Some("count(*) desc"));
        assert_eq!(
            keys,
            ["count(*)", "site_name"],
            "the group key is answered though not selected"
        );
        assert_eq!(o.total, 2);
        let (_, o) = answer(Some("count(*) as n"), &["pm10 > 1000"], None, None);
        assert_eq!(nums(&o, 0), [Some(0.0)], "aggregates over nothing answer one row");
        let (_, o) = answer(Some("count(*) as n"), &["pm10 > 1000"], Some("site_name"), None);
        assert!(o.rows.is_empty(), "…but groups over nothing answer none");
    }

    #[test]
    fn errors_name_fields_functions_and_clauses() {
        let e = |s: Option<&str>, w: &[&str], g: Option<&str>, o: Option<&str>| {
            let q = Query::parse(s, w, g, o).unwrap();
            compile(&q, &fields(), Tz::UTC).unwrap_err().to_string()
        };
        assert_eq!(
            e(None, &["departement = 13"], None, None),
            "ODSQL query is malformed: Unknown field: departement. Clause(s) containing the error(s): where."
        );
        assert!(
            e(Some("site_name, count(*)"), &[], None, None)
                .contains("site_name must be in the group_by clause")
        );
        assert!(e(None, &["avg(pm10) > 3"], None, None).contains("not allowed in where"));
        assert!(e(Some("median(pm10)"), &[], None, None).contains("median() is not supported"));
        assert!(
            e(Some("frobnicate(pm10)"), &[], None, None).contains("Unknown function: frobnicate")
        );
        assert!(e(Some("avg(site_name)"), &[], None, None).contains("needs a numeric field"));
        assert!(e(None, &["date = date'2024-13'"], None, None).contains("Invalid date literal"));
    }
}

#[cfg(test)]
mod random {
    use super::*;
    use proptest::prelude::*;

    const PIECES: &[&str] = &[
        "pm10",
        "date",
        "site_name",
        "people",
        "geo_point_2d",
        "nope",
        "(",
        ")",
        "and",
        "or",
        "not",
        "in",
        "[",
        "]",
        "]",
        "[",
        "..",
        "=",
        "!=",
        ">",
        "<=",
        ":",
        "'La Rotonde'",
        "\"x\"",
        "date'2024'",
        "date'2024-02-30'",
        "1",
        "2.5",
        "-3",
        "0",
        ",",
        "count(*)",
        "avg(",
        "sum(",
        "min(",
        "max(",
        "count(distinct",
        "year(",
        "month(",
        "day(",
        "hour(",
        "date_format(",
        "'yyyy-MM'",
        "lower(",
        "length(",
        "ifnull(",
        "search(",
        "startswith(",
        "*",
        "+",
        "/",
        "-",
        "as",
        "x",
        "is",
        "null",
        "true",
        "like",
        "desc",
        "asc",
    ];

    fn clause() -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(PIECES), 0..14).prop_map(|p| p.join(" "))
    }

    proptest! {
        /// Queries put together from ODSQL's pieces are refused with a message, or answered
        /// over records holding every kind of value (nulls, extremes) without a panic.
        #[test]
        fn random_queries_are_refused_or_answered(s in clause(), w in clause(), g in clause(), o in clause()) {
            let f = |name: &str, ftype| Field { name: name.into(), label: name.into(), ftype, description: None, unit: None, facet: false };
            let fields = [
                f("date", FieldType::DateTime), f("site_name", FieldType::Text),
                f("pm10", FieldType::Double), f("people", FieldType::Int),
                f("geo_point_2d", FieldType::GeoPoint),
            ];
            let Ok(q) = Query::parse(Some(&s), &[&w], Some(&g), Some(&o)) else { return Ok(()) };
            let Ok(c) = compile(&q, &fields, chrono_tz::Europe::Paris) else { return Ok(()) };
            let rows = [
                vec![V::Time(1_700_000_000_000_000_000), V::text("La Rotonde"), V::Num(12.5), V::Num(3.0), V::Geo(43.5, 5.4)],
                vec![V::Null, V::Null, V::Null, V::Null, V::Null],
                vec![V::Time(i64::MIN), V::text(""), V::Num(f64::MAX), V::Num(-0.0), V::Null],
            ];
            let mut run = c.run(Some(2));
            for r in &rows {
                let _ = run.push(r);
            }
            let out = run.finish();
            prop_assert!(out.rows.iter().all(|r| r.len() == c.answered()));
        }
    }
}
