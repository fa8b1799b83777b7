//! The column mapping of the identifiers in `crate::ids`, which know no diesel: each is stored as
//! its bare number or text, read and written through `ToSql`/`FromSql` on both backends.

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, Queryable};
use diesel::expression::AsExpression;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::{BigInt, Nullable, SingleValue, Text};

use crate::ids::{DeviceSerial, GroupId, TenantId, UserId};

/// Gives an `i64` newtype its `BigInt` column mapping (and the nullable one) on every backend.
macro_rules! stored_as_big_int {
    ($($id:ident),+ $(,)?) => {$(
        impl<DB> ToSql<BigInt, DB> for $id
        where
            DB: Backend,
            i64: ToSql<BigInt, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                self.0.to_sql(out)
            }
        }

        impl<DB> ToSql<Nullable<BigInt>, DB> for $id
        where
            DB: Backend,
            i64: ToSql<BigInt, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                ToSql::<BigInt, DB>::to_sql(&self.0, out)
            }
        }

        impl<DB> FromSql<BigInt, DB> for $id
        where
            DB: Backend,
            i64: FromSql<BigInt, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                i64::from_sql(bytes).map(Self)
            }
        }

        impl<DB, ST> Queryable<ST, DB> for $id
        where
            DB: Backend,
            ST: SingleValue,
            Self: FromSql<ST, DB>,
        {
            type Row = Self;

            fn build(row: Self) -> deserialize::Result<Self> {
                Ok(row)
            }
        }

        stored_as_big_int!(@expr $id, BigInt);
        stored_as_big_int!(@expr $id, Nullable<BigInt>);
    )+};
    (@expr $id:ident, $st:ty) => {
        impl AsExpression<$st> for $id {
            type Expression = <i64 as AsExpression<$st>>::Expression;

            fn as_expression(self) -> Self::Expression {
                AsExpression::<$st>::as_expression(self.0)
            }
        }

        impl AsExpression<$st> for &$id {
            type Expression = <i64 as AsExpression<$st>>::Expression;

            fn as_expression(self) -> Self::Expression {
                AsExpression::<$st>::as_expression(self.0)
            }
        }
    };
}

stored_as_big_int!(TenantId, UserId, GroupId);

/// A device serial is stored as its bare text (`Text`, and the nullable one) on every backend.
impl<DB> ToSql<Text, DB> for DeviceSerial
where
    DB: Backend,
    String: ToSql<Text, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.0.to_sql(out)
    }
}

impl<DB> ToSql<Nullable<Text>, DB> for DeviceSerial
where
    DB: Backend,
    String: ToSql<Text, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        ToSql::<Text, DB>::to_sql(&self.0, out)
    }
}

impl<DB> FromSql<Text, DB> for DeviceSerial
where
    DB: Backend,
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        String::from_sql(bytes).map(Self)
    }
}

impl<DB, ST> Queryable<ST, DB> for DeviceSerial
where
    DB: Backend,
    ST: SingleValue,
    Self: FromSql<ST, DB>,
{
    type Row = Self;

    fn build(row: Self) -> deserialize::Result<Self> {
        Ok(row)
    }
}

/// `AsExpression` for a device serial (owned, borrowed once or twice) as `Text` or
/// `Nullable<Text>`.
macro_rules! serial_expression {
    ($($st:ty),+) => {$(
        impl AsExpression<$st> for DeviceSerial {
            type Expression = <String as AsExpression<$st>>::Expression;

            fn as_expression(self) -> Self::Expression {
                AsExpression::<$st>::as_expression(self.0)
            }
        }

        impl<'a> AsExpression<$st> for &'a DeviceSerial {
            type Expression = <&'a String as AsExpression<$st>>::Expression;

            fn as_expression(self) -> Self::Expression {
                AsExpression::<$st>::as_expression(&self.0)
            }
        }

        impl<'a, 'b> AsExpression<$st> for &'a &'b DeviceSerial {
            type Expression = <&'b String as AsExpression<$st>>::Expression;

            fn as_expression(self) -> Self::Expression {
                AsExpression::<$st>::as_expression(&self.0)
            }
        }
    )+};
}

serial_expression!(Text, Nullable<Text>);
