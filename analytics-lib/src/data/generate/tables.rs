//! Column buffers for one chunk of simulated customers, orders and lines,
//! and the Parquet writer of each table.

use super::*;

// ---------------------------------------------------------------------------
// Column buffers for one chunk.

#[derive(Default)]
pub(super) struct CustomerCols {
    pub(super) id: Vec<String>,
    pub(super) signup: Vec<i32>,
    pub(super) city: Vec<Option<&'static str>>,
    pub(super) state: Vec<Option<&'static str>>,
    pub(super) lat: Vec<Option<f64>>,
    pub(super) lon: Vec<Option<f64>>,
}

#[derive(Default)]
pub(super) struct OrderCols {
    pub(super) id: Vec<String>,
    pub(super) customer: Vec<String>,
    pub(super) ts: Vec<i64>,
    pub(super) channel: Vec<&'static str>,
    pub(super) payment: Vec<&'static str>,
    pub(super) status: Vec<&'static str>,
}

#[derive(Default)]
pub(super) struct LineCols {
    pub(super) order: Vec<String>,
    pub(super) line_no: Vec<i32>,
    pub(super) product: Vec<String>,
    pub(super) quantity: Vec<i32>,
    pub(super) unit_price: Vec<f64>,
    pub(super) discount: Vec<f64>,
}

impl CustomerCols {
    pub(super) fn push(&mut self, id: &str, c: &SimCustomer) {
        let city = c.city.map(|i| &CITIES[i]);
        self.id.push(id.to_string());
        self.signup.push(c.signup_day);
        self.city.push(city.map(|c| c.name));
        self.state.push(city.map(|c| c.uf));
        self.lat.push(c.latitude);
        self.lon.push(c.longitude);
    }
    pub(super) fn frame(self) -> PolarsResult<DataFrame> {
        let n = self.id.len();
        DataFrame::new(
            n,
            vec![
                Column::new("customer_id".into(), self.id),
                Int32Chunked::from_vec("signup_date".into(), self.signup)
                    .into_date()
                    .into_column(),
                Column::new("city".into(), self.city),
                Column::new("state".into(), self.state),
                Column::new("latitude".into(), self.lat),
                Column::new("longitude".into(), self.lon),
            ],
        )
    }
}

impl OrderCols {
    pub(super) fn push(&mut self, id: &str, customer: &str, o: &SimOrder) {
        self.id.push(id.to_string());
        self.customer.push(customer.to_string());
        self.ts.push(o.ts_us);
        self.channel.push(CHANNELS[o.channel as usize]);
        self.payment.push(PAYMENTS[o.payment as usize]);
        self.status.push(STATUS_NAMES[o.status as usize]);
    }
    pub(super) fn frame(self) -> PolarsResult<DataFrame> {
        let n = self.id.len();
        DataFrame::new(
            n,
            vec![
                Column::new("order_id".into(), self.id),
                Column::new("customer_id".into(), self.customer),
                Int64Chunked::from_vec("order_ts".into(), self.ts)
                    .into_datetime(TimeUnit::Microseconds, None)
                    .into_column(),
                Column::new("channel".into(), self.channel),
                Column::new("payment_type".into(), self.payment),
                Column::new("status".into(), self.status),
            ],
        )
    }
}

impl LineCols {
    pub(super) fn push(&mut self, order: &str, line_no: i32, product: String, l: &SimLine) {
        self.order.push(order.to_string());
        self.line_no.push(line_no);
        self.product.push(product);
        self.quantity.push(l.quantity);
        self.unit_price.push(l.unit_price);
        self.discount.push(l.discount);
    }
    pub(super) fn frame(self) -> PolarsResult<DataFrame> {
        let n = self.order.len();
        DataFrame::new(
            n,
            vec![
                Column::new("order_id".into(), self.order),
                Column::new("line_no".into(), self.line_no),
                Column::new("product_id".into(), self.product),
                Column::new("quantity".into(), self.quantity),
                Column::new("unit_price".into(), self.unit_price),
                Column::new("discount".into(), self.discount),
            ],
        )
    }
}

// ---------------------------------------------------------------------------
// Writing.

/// A table being written to a temporary file, renamed into place at the end.
pub(super) struct TableWriter {
    pub(super) table: &'static str,
    pub(super) tmp: PathBuf,
    pub(super) dest: PathBuf,
    pub(super) writer: polars::io::parquet::write::BatchedWriter<File>,
}

impl TableWriter {
    pub(super) fn create(out: &Path, spec: &TableSpec) -> Result<Self> {
        let dest = out.join(format!("{}.parquet", spec.name));
        let tmp = crate::data::writer::partial_path(out, spec.name);
        let file = File::create(&tmp).map_err(DataError::io(&tmp, "creating the output file"))?;
        let writer = ParquetWriter::new(file)
            .with_compression(ParquetCompression::Zstd(None))
            .with_statistics(StatisticsOptions::full())
            .batched(&spec.schema())
            .map_err(DataError::polars(spec.name, "starting the Parquet writer"))?;
        Ok(TableWriter {
            table: spec.name,
            tmp,
            dest,
            writer,
        })
    }

    pub(super) fn write(&mut self, df: PolarsResult<DataFrame>) -> Result<()> {
        let df = df.map_err(DataError::polars(self.table, "building a chunk"))?;
        if df.height() > 0 {
            self.writer
                .write_batch(&df)
                .map_err(DataError::polars(self.table, "writing a chunk"))?;
        }
        Ok(())
    }

    pub(super) fn finish(self) -> Result<(PathBuf, PathBuf)> {
        self.writer
            .finish()
            .map_err(DataError::polars(self.table, "finishing the Parquet file"))?;
        Ok((self.tmp, self.dest))
    }
}
