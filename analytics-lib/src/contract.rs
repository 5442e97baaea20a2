//! The curated data contract (`shared/spec/data-contract.md`) as code.
//!
//! Four tables, their required columns, the type each column must have and
//! whether it may hold nulls. The loader validates against these specs and the
//! generator writes exactly these schemas, so the contract lives in one place.

use polars::prelude::*;

/// Logical column types of the contract. Each accepts a small set of
/// physical Parquet/Arrow types that can be converted without loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// UTF-8 string (also accepted: categorical / enum).
    String,
    /// UTF-8 string of repeated values (a status, a state, a category, the
    /// product of an order line), stored as a string like
    /// [`ColumnType::String`] and held as a categorical once loaded
    /// ([`ColumnSpec::loaded_dtype`]): a 4-byte code a row instead of a
    /// 16-byte string view, and ids that index vectors. Ids of the orders
    /// and customers are nearly as many as their rows: they stay text.
    Category,
    /// Calendar date (also accepted: a timestamp, truncated to its day).
    Date,
    /// Timestamp in microseconds, no time zone (other units are converted).
    TimestampMicros,
    /// 64-bit float (also accepted: float32 and any integer).
    Float64,
    /// 32-bit integer (also accepted: any integer type whose values fit).
    Int32,
}

impl ColumnType {
    /// The polars type the column is stored (written) as.
    pub fn dtype(self) -> DataType {
        match self {
            ColumnType::String | ColumnType::Category => DataType::String,
            ColumnType::Date => DataType::Date,
            ColumnType::TimestampMicros => DataType::Datetime(TimeUnit::Microseconds, None),
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Int32 => DataType::Int32,
        }
    }

    /// Human name used in error messages ("expected date").
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::String | ColumnType::Category => "string",
            ColumnType::Date => "date",
            ColumnType::TimestampMicros => "timestamp (µs, no time zone)",
            ColumnType::Float64 => "float64",
            ColumnType::Int32 => "int32",
        }
    }

    /// Whether a physical type found in a file can be read as this type.
    pub fn accepts(self, found: &DataType) -> bool {
        match self {
            ColumnType::String | ColumnType::Category => matches!(
                found,
                DataType::String | DataType::Categorical(..) | DataType::Enum(..)
            ),
            ColumnType::Date => matches!(found, DataType::Date | DataType::Datetime(_, None)),
            ColumnType::TimestampMicros => matches!(found, DataType::Datetime(_, None)),
            ColumnType::Float64 => found.is_primitive_numeric(),
            ColumnType::Int32 => found.is_integer(),
        }
    }
}

/// One required column of a table.
#[derive(Debug, Clone, Copy)]
pub struct ColumnSpec {
    pub name: &'static str,
    pub ty: ColumnType,
    pub nullable: bool,
}

/// The dictionaries of the few-valued columns: one per column name, shared
/// by every table and sales view alive in the process, so that a column's
/// codes mean the same in the tables, the cleaned tables and the view (a
/// code is gathered, never translated). Freed with the last column using it.
const CATEGORIES_NAMESPACE: &str = "analytics_lib::kpi::Sales";

/// The categorical type of a few-valued column named `name` (its shared
/// dictionary).
pub fn categorical_dtype(name: &str) -> DataType {
    DataType::from_categories(Categories::new(
        name.into(),
        PlSmallStr::from_static(CATEGORIES_NAMESPACE),
        CategoricalPhysical::U32,
    ))
}

impl ColumnSpec {
    /// The polars type the column has once loaded: the stored type, but a
    /// few-valued text column as a categorical of its shared dictionary.
    pub fn loaded_dtype(&self) -> DataType {
        match self.ty {
            ColumnType::Category => categorical_dtype(self.name),
            ty => ty.dtype(),
        }
    }
}

/// One table of the contract.
#[derive(Debug, Clone, Copy)]
pub struct TableSpec {
    pub name: &'static str,
    pub columns: &'static [ColumnSpec],
    /// Columns that together form the table's unique key.
    pub key: &'static [&'static str],
}

impl TableSpec {
    /// The schema the table is stored (written) with (contract columns
    /// only, in order).
    pub fn schema(&self) -> Schema {
        self.schema_with(|c| c.ty.dtype())
    }

    /// The schema the table has once loaded: [`TableSpec::schema`] with
    /// the few-valued columns categorical.
    pub fn loaded_schema(&self) -> Schema {
        self.schema_with(ColumnSpec::loaded_dtype)
    }

    /// The contract columns, in order, each of type `dtype(column)`.
    pub fn schema_with(&self, dtype: impl Fn(&ColumnSpec) -> DataType) -> Schema {
        self.columns
            .iter()
            .map(|c| Field::new(c.name.into(), dtype(c)))
            .collect()
    }

    /// A loaded table of this spec in the types it is stored (written)
    /// with: its few-valued columns as text again (other columns as they
    /// are).
    pub fn stored(&self, df: DataFrame) -> PolarsResult<DataFrame> {
        self.cast_categories(df, |_| DataType::String)
    }

    /// A table of this spec (or some of its columns) in the types it has
    /// once loaded: text columns of repeated values categorical, as the
    /// loader reads them (a no-op on loaded tables; tables built by hand
    /// with text). Columns the frame lacks are skipped.
    pub fn loaded(&self, df: DataFrame) -> PolarsResult<DataFrame> {
        self.cast_categories(df, ColumnSpec::loaded_dtype)
    }

    /// `df` with each of its [`ColumnType::Category`] columns cast to
    /// `to(column)` where it has another type.
    fn cast_categories(
        &self,
        mut df: DataFrame,
        to: impl Fn(&ColumnSpec) -> DataType,
    ) -> PolarsResult<DataFrame> {
        for c in self.columns.iter().filter(|c| c.ty == ColumnType::Category) {
            let Ok(column) = df.column(c.name) else {
                continue;
            };
            let dtype = to(c);
            if column.dtype() != &dtype {
                let cast = column.cast(&dtype)?;
                df.with_column(cast)?;
            }
        }
        Ok(df)
    }

    pub fn column_names(&self) -> Vec<&'static str> {
        self.columns.iter().map(|c| c.name).collect()
    }
}

const fn col_spec(name: &'static str, ty: ColumnType, nullable: bool) -> ColumnSpec {
    ColumnSpec { name, ty, nullable }
}

pub const CUSTOMERS: TableSpec = TableSpec {
    name: "customers",
    columns: &[
        col_spec("customer_id", ColumnType::String, false),
        col_spec("signup_date", ColumnType::Date, false),
        col_spec("city", ColumnType::Category, true),
        col_spec("state", ColumnType::Category, true),
        col_spec("latitude", ColumnType::Float64, true),
        col_spec("longitude", ColumnType::Float64, true),
    ],
    key: &["customer_id"],
};

pub const PRODUCTS: TableSpec = TableSpec {
    name: "products",
    columns: &[
        col_spec("product_id", ColumnType::Category, false),
        col_spec("category", ColumnType::Category, false),
        col_spec("list_price", ColumnType::Float64, false),
    ],
    key: &["product_id"],
};

pub const ORDERS: TableSpec = TableSpec {
    name: "orders",
    columns: &[
        col_spec("order_id", ColumnType::String, false),
        col_spec("customer_id", ColumnType::String, false),
        col_spec("order_ts", ColumnType::TimestampMicros, false),
        col_spec("channel", ColumnType::Category, false),
        col_spec("payment_type", ColumnType::Category, false),
        col_spec("status", ColumnType::Category, false),
    ],
    key: &["order_id"],
};

pub const ORDER_ITEMS: TableSpec = TableSpec {
    name: "order_items",
    columns: &[
        col_spec("order_id", ColumnType::String, false),
        col_spec("line_no", ColumnType::Int32, false),
        col_spec("product_id", ColumnType::Category, false),
        col_spec("quantity", ColumnType::Int32, false),
        col_spec("unit_price", ColumnType::Float64, false),
        col_spec("discount", ColumnType::Float64, false),
    ],
    key: &["order_id", "line_no"],
};

/// All four tables, in load order.
pub const TABLES: [TableSpec; 4] = [CUSTOMERS, PRODUCTS, ORDERS, ORDER_ITEMS];

/// Order statuses of the contract. Only `completed` counts as revenue.
pub const STATUS_COMPLETED: &str = "completed";
pub const STATUS_CANCELED: &str = "canceled";
pub const STATUS_RETURNED: &str = "returned";
pub const STATUSES: [&str; 3] = [STATUS_COMPLETED, STATUS_CANCELED, STATUS_RETURNED];

/// Sales channels of the contract.
pub const CHANNELS: [&str; 3] = ["web", "app", "store"];
